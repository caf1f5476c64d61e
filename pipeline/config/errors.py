"""The error every config check raises, and the did-you-mean hint its messages end with."""

import difflib
import typing


class ConfigError(ValueError):
    """A configuration that cannot be run: unknown key, wrong type, bad value or impossible combination."""


def did_you_mean(word, choices: typing.Iterable[str]) -> str:
    """` Did you mean 'x'?` for the choice closest to `word`, or "" when none is close."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def choice_error(path: str, value, choices: typing.Sequence) -> ConfigError:
    """The error for a value outside a fixed set: `path: 'x' is not one of [...]. Did you mean ...?`."""
    return ConfigError(f"{path}: {value!r} is not one of {list(choices)}."
                       + did_you_mean(value, [str(choice) for choice in choices]))
