"""User-facing errors: each carries a one-line message the CLI prints as-is."""

from __future__ import annotations


def install_hint(extra: str, *, build: str = "") -> str:
    """The one way every hint says to install an optional extra (from the source checkout, pinned as tested);
    `build`: environment settings for the build (the [local] extra's portable llama.cpp)."""
    return f"{build + ' ' if build else ''}pip install -c constraints.txt -e '.[{extra}]'"


class LheError(Exception):
    """Base for errors the user can fix; the CLI prints `lhe-tui: error: <msg>` and exits non-zero."""

    exit_code = 2


class ConfigError(LheError):
    """Bad flags or an impossible combination of options."""


class DatasetError(LheError):
    """A dataset file that cannot be used (missing, malformed, too short)."""


class StoreError(LheError):
    """A database that cannot be opened or is not an lhe-tui store."""


class StoreWriteError(StoreError):
    """The store stopped taking a run's rows (a full disk, a damaged page, a read-only file): the runner
    stops the run at once, keeping what is committed; the session is left `interrupted` if that can
    still be written (else its writer's lock, released as the process ends, shows it `crashed`)."""

    exit_code = 1


class ProviderError(LheError):
    """A model provider failed.

    `transient` errors (429, 5xx, connection resets, timeouts, cut streams) may be retried;
    permanent ones (401, 404, 400) stop the sample (under the paper protocol: the turn is recorded as one the
    provider failed, and the sample goes on); `fatal` ones (our local model server died) stop every sample:
    the run ends failed with this message. `refused`: nothing accepted the connection. `retries`: how many
    retries the runner made before giving up on it. `unreachable` ones (could not connect, connection lost,
    stream cut, timed out) say the server itself did not answer: another replica may (providers.endpoints
    marks that server down).
    """

    exit_code = 1

    def __init__(self, message: str, *, transient: bool = False, retry_after: float | None = None,
                 status: int | None = None, fatal: bool = False, refused: bool = False, retries: int = 0,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.unreachable = unreachable
        self.fatal = fatal
        self.retry_after = retry_after
        self.status = status
        self.refused = refused
        self.retries = retries

    @property
    def dead_end(self) -> bool:
        """A key, a model or an address that is wrong (401, 403, 404, a refused connection), or a request the
        server refuses as built (400, 422: an option it does not take): on a run's first request it ends the
        run at once, since no later request would fare better."""
        return self.refused or self.status in (400, 401, 403, 404, 422)
