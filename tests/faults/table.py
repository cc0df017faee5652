"""The faults a running reloader meets: one table, one row per fault, each checked by a test.

This is the only list of faults and what hotmod does about them; the docs link here.
Every row says what happens, what the user sees, and the test that checks it. Rows with a
``save`` are run by ``test_bad_input.py::test_a_bad_save_is_refused``, which saves that
content and checks the expected status, cause and line. ``test_table.py`` checks that
every row names a test that exists and that every test of this folder has a row.

What every fault test checks besides its row (``tests/support/faults.py``): the version
running before the fault is intact (a reference taken before keeps its old behaviour),
and the reloader still works (the next good save applies).

Print the table as Markdown with ``python -m tests.faults.table``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["FAULTS", "SAVES", "BadSave", "Fault", "markdown"]


@dataclass(frozen=True)
class BadSave:
    """A save whose content cannot run: what is saved, and what the reload reports."""

    content: str | bytes
    #: the expected ``__cause__`` of the ``ReloadError`` (one of these types)
    cause: tuple[type[BaseException], ...]
    #: the line the error names, when the check is that precise
    lineno: int | None = None
    status: str = "aborted"


@dataclass(frozen=True)
class Fault:
    """One row: a fault, what the user sees, and where it is checked."""

    #: a short name: the test id of a ``save`` row
    id: str
    #: what happens, in the user's words
    fault: str
    #: what the user sees (the result's status, the message, what keeps running)
    outcome: str
    #: ``folder/test_file.py::test_name`` under ``tests/``: the test that checks the row
    test: str
    #: for rows run by the parametrized bad-save test: the content saved
    save: BadSave | None = None


_BAD_SAVE = "faults/test_bad_input.py::test_a_bad_save_is_refused"


def _random_bytes() -> bytes:
    rng = random.Random(1234)
    return bytes(rng.randrange(256) for _ in range(300)) + b"\x00\x00def f(): return 2\n"


FAULTS: tuple[Fault, ...] = (
    # -- content that cannot run ------------------------------------------------------------
    Fault(
        "syntax_error",
        "a save with a syntax error",
        "``aborted``, the ``ReloadError`` names the file and line",
        _BAD_SAVE,
        BadSave("def f(): return 2\nX = = 2\n", (SyntaxError,), lineno=2),
    ),
    Fault(
        "indentation_error",
        "a save with an indentation error",
        "``aborted`` (``IndentationError``)",
        _BAD_SAVE,
        BadSave("def f():\nreturn 2\n", (IndentationError,)),
    ),
    Fault(
        "exception_in_module_code",
        "module code that raises",
        "``aborted``, the line that raised",
        _BAD_SAVE,
        BadSave("def f(): return 2\nX = 1 / 0\n", (ZeroDivisionError,), lineno=2),
    ),
    Fault(
        "exception_in_a_called_function",
        "module code calling a function of the file that raises",
        "``aborted``, the deepest line in the file (the ``raise``)",
        _BAD_SAVE,
        BadSave(
            "def f(): return 2\ndef boom():\n    raise LookupError('deep')\nX = boom()\n", (LookupError,), 3
        ),
    ),
    Fault(
        "import_error",
        "module code importing a module that does not exist",
        "``aborted`` (``ImportError``), the import's line",
        _BAD_SAVE,
        BadSave("import hotmod_no_such_module_anywhere\ndef f(): return 2\n", (ImportError,), lineno=1),
    ),
    Fault(
        "system_exit_in_module_code",
        "module code raising ``SystemExit``",
        "the old version is restored, then ``SystemExit`` reaches the caller of ``poll()``",
        "faults/test_bad_input.py::test_system_exit_in_module_code_is_aborted",
    ),
    Fault(
        "binary_content",
        "binary content (random bytes)",
        "``aborted``, reported once",
        _BAD_SAVE,
        BadSave(_random_bytes(), (SyntaxError, ValueError)),
    ),
    Fault(
        "nul_bytes",
        "NUL bytes in otherwise valid source",
        "``aborted``",
        _BAD_SAVE,
        BadSave(b"def f(): return 2\n\x00\nX = 2\n", (SyntaxError, ValueError)),
    ),
    Fault(
        "non_utf8_bytes",
        "bytes that are not UTF-8 (and no encoding declared)",
        "``aborted`` (``SyntaxError``)",
        _BAD_SAVE,
        BadSave(b"def f(): return '\xff\xfe caf\xe9'\nX = 2\n", (SyntaxError,)),
    ),
    Fault(
        "declared_encoding",
        "a file declaring ``latin-1``",
        "``ok``: the declaration is honoured",
        "faults/test_bad_input.py::test_declared_latin1_encoding_is_honoured",
    ),
    Fault(
        "utf8_bom",
        "a UTF-8 byte-order mark",
        "``ok``",
        "faults/test_bad_input.py::test_utf8_bom_is_accepted",
    ),
    Fault(
        "empty_file",
        "an empty file (without a settle time)",
        "``ok``: an empty module, its names pruned; references taken before still work",
        "faults/test_bad_input.py::test_empty_file_is_applied_as_an_empty_module",
    ),
    Fault(
        "broken_file_in_a_batch",
        "one broken file among several saved together",
        "nothing of the batch applies; once fixed, all of it does",
        "faults/test_bad_input.py::test_a_broken_file_blocks_its_batch_not_later_fixes",
    ),
    # -- files that go away, or are no longer files -------------------------------------------
    Fault(
        "deleted_file",
        "a file deleted before it is looked at",
        '``failed`` ("was deleted"), reported once; the edit made when it is back applies',
        "faults/test_bad_input.py::test_deleted_file",
    ),
    Fault(
        "deleted_file_that_lasts",
        "a file deleted, with the default settle time",
        "nothing while it may be a save in progress, then ``failed``",
        "watching/test_detection.py::test_a_deletion_that_lasts_is_reported_after_the_wait",
    ),
    Fault(
        "deleted_file_restored",
        "a deleted file restored unchanged",
        "``noop``",
        "faults/test_bad_input.py::test_deleted_file_restored_unchanged_is_a_noop",
    ),
    Fault(
        "deleted_after_queued",
        "a file deleted after its edit was queued, before it was read",
        '``noop`` while it may be a save in progress, then ``failed`` ("was deleted") once; '
        "the other files keep reloading",
        "faults/test_faults.py::test_deleted_after_its_edit_was_queued",
    ),
    Fault(
        "deleted_between_scan_and_read",
        "a file deleted between the polling scan and the read",
        "the same",
        "faults/test_faults.py::test_deleted_between_the_scan_and_the_read_polling",
    ),
    Fault(
        "deleted_together",
        "several files deleted together",
        "one ``failed``, however often they are looked at again",
        "faults/test_faults.py::test_files_deleted_together_are_reported_once",
    ),
    Fault(
        "file_replaced_by_a_directory",
        "a module file replaced by a directory",
        '``failed`` ("no longer a file")',
        "faults/test_bad_input.py::test_file_replaced_by_a_directory",
    ),
    Fault(
        "file_replaced_by_a_directory_polling",
        "the same, seen by the polling scan",
        "``failed``; the file back applies",
        "faults/test_bad_input.py::test_file_replaced_by_a_directory_polling",
    ),
    Fault(
        "subpackage_replaced_by_a_file",
        "a subpackage folder replaced by a file (``sub`` or ``sub.py``), and back",
        '``failed`` ("was deleted"); the edit made when the folder is back applies',
        "faults/test_faults.py::test_subpackage_folder_replaced_by_a_file_and_back",
    ),
    Fault(
        "subpackage_replaced_by_a_file_watchdog",
        "the same on kernel events",
        "the same; the new folder is watched again (the health check, once a second)",
        "faults/test_faults.py::test_subpackage_folder_replaced_by_a_file_and_back_watchdog",
    ),
    Fault(
        "unreadable_file",
        "a file the process may not read (``chmod 0``; skipped as root)",
        '``failed`` ("permission denied")',
        "faults/test_bad_input.py::test_unreadable_file_chmod",
    ),
    Fault(
        "permission_error",
        "``open`` raising ``PermissionError``",
        '``failed`` ("permission denied"), reported once; readable again, it applies',
        "faults/test_bad_input.py::test_unreadable_file_permission_error",
    ),
    # -- the watched folder itself ----------------------------------------------------------
    Fault(
        "watched_folder_briefly_gone",
        "the watched folder gone for a moment (polling)",
        "nothing reported; the edit made on its return applies",
        "faults/test_faults.py::test_watched_folder_briefly_gone_polling",
    ),
    Fault(
        "watched_folder_deleted_and_made_again",
        "the watched folder deleted, then made again (kernel events)",
        "``failed`` while it is gone, neither watched nor polled meanwhile; when it is back, "
        "a warning, and it is watched",
        "faults/test_faults.py::test_watched_folder_deleted_then_made_again_watchdog",
    ),
    Fault(
        "watched_folder_renamed_and_replaced",
        "the watched folder renamed away and replaced (kernel events)",
        "a warning; the new folder is watched, the old one no longer",
        "faults/test_faults.py::test_watched_folder_renamed_away_and_replaced_watchdog",
    ),
    # -- symlinks -----------------------------------------------------------------------------
    Fault(
        "symlink_loops_in_the_folder",
        "symlink loops and dangling links in a watched folder (polling, kernel events)",
        "nothing: they are not modules; no hang",
        "faults/test_faults.py::test_symlink_loops_in_a_watched_folder_are_ignored",
    ),
    Fault(
        "module_replaced_by_a_symlink",
        "a module file replaced by a symlink loop or a dangling symlink",
        '``failed`` ("cannot be read (Too many levels of symbolic links)", or "was deleted" '
        "for a dangling link); the other files keep reloading",
        "faults/test_faults.py::test_module_file_replaced_by_a_symlink_loop_or_a_dangling_symlink",
    ),
    # -- size and time ----------------------------------------------------------------------
    Fault(
        "ten_megabyte_module",
        "a 10 MB module",
        "its edits apply, a syntax error in it names the line; another module's reload never reads it",
        "faults/test_faults.py::test_a_10_mb_module",
    ),
    Fault(
        "slow_module_code",
        "module code that blocks on the reloader's thread",
        "other threads run the old version until the commit; ``poll()`` and ``reload()`` from "
        "another thread wait for it, then return a result",
        "faults/test_faults.py::test_slow_module_code_other_threads_wait_for_the_commit",
    ),
    Fault(
        "stop_during_slow_module_code",
        "``stop()`` while module code is slow",
        "it returns once the module code does; the reload under way commits",
        "faults/test_faults.py::test_stop_during_slow_module_code",
    ),
    Fault(
        "close_during_slow_module_code",
        "``close()`` while module code is slow",
        "the same",
        "faults/test_faults.py::test_close_during_slow_module_code",
    ),
    # -- listeners and hooks ------------------------------------------------------------------
    Fault(
        "raising_listener",
        "a listener that raises",
        "logged; the other listeners still run",
        "engine/test_listeners.py::test_a_raising_listener_is_logged_and_others_still_run",
    ),
    Fault(
        "raising_listener_background",
        "a listener that raises, on the reloader's thread",
        "logged; the thread keeps applying",
        "watching/test_threads.py::test_background_apply_with_a_raising_listener_keeps_going",
    ),
    Fault(
        "blocking_listener",
        "a listener that blocks",
        "it holds only the reloader's thread: ``poll()`` on another thread applies; ``stop()`` "
        "logs that the thread is busy and returns; ``start()`` works again",
        "faults/test_faults.py::test_a_blocking_listener_holds_only_the_reloaders_thread",
    ),
    Fault(
        "listener_raising_system_exit",
        "a listener raising ``SystemExit``",
        "logged; the reloader's thread keeps applying",
        "faults/test_faults.py::test_a_listener_raising_system_exit_does_not_end_the_reloaders_thread",
    ),
    Fault(
        "raising_hook",
        "a dispose or accept hook that raises",
        "``ok`` with a warning naming the hook; the reload commits",
        "engine/test_hot.py::test_a_hook_that_raises_is_reported_and_the_reload_commits",
    ),
    Fault(
        "blocking_dispose_hook",
        "a dispose hook that blocks",
        "the old version serves until the hook returns; then the reload commits",
        "faults/test_faults.py::test_a_blocking_dispose_hook_keeps_the_old_version_serving",
    ),
    Fault(
        "hook_raising_system_exit",
        "a hook raising ``SystemExit``",
        "``ok`` with a warning naming the hook and its file; the reload commits",
        "faults/test_faults.py::test_a_hook_raising_system_exit_is_reported_and_the_reload_commits",
    ),
    # -- the watcher ------------------------------------------------------------------------
    Fault(
        "watch_limit",
        "the inotify watch limit reached",
        "the folder is polled instead, with a warning",
        "watching/test_detection.py::test_a_folder_that_cannot_be_watched_is_announced_and_polled",
    ),
    Fault(
        "lost_kernel_events",
        "kernel events lost (Linux)",
        "the loss is always detected (watchdog's events-lost event, or a hook on its inotify reader)",
        "watching/test_watcher_faults.py::test_lost_kernel_events_are_always_detected_on_linux",
    ),
    Fault(
        "inotify_overflow",
        "the kernel's inotify queue overflows",
        'a warning ("dropped file events"); every tracked file is compared, the lost edit applies',
        "watching/test_watcher_faults.py::test_inotify_queue_overflow_makes_the_reloader_compare_every_tracked_file",
    ),
    Fault(
        "dead_watcher_thread",
        "the watcher thread dies",
        "a warning; it is restarted on the next look, the missed edit applies, the next save is heard",
        "watching/test_watcher_faults.py::test_a_dead_watcher_thread_is_restarted_and_the_missed_edit_applied",
    ),
)

#: the rows ``test_a_bad_save_is_refused`` runs
SAVES: tuple[Fault, ...] = tuple(row for row in FAULTS if row.save is not None)


def markdown() -> str:
    """The table as Markdown: fault, what the user sees, the test."""
    lines = ["| Fault | What you see | Test |", "|---|---|---|"]
    for row in FAULTS:
        test = f"tests/{row.test}" + (f"[{row.id}]" if row.save is not None else "")
        cells = (row.fault, row.outcome, f"`{test}`")
        lines.append("| " + " | ".join(cell.replace("``", "`").replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
