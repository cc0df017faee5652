"""A helper shared by plugins (names starting with _ are never loaded as plugins)."""


def shout(text):
    return text.upper() + "!"
