"""A small error taxonomy. Callers decide by the `retriable` attribute, as with aiokafka's errors."""

from __future__ import annotations


class CityStreamError(Exception):
    """Base of every error CityStream raises on purpose."""

    retriable: bool = False


class TransientError(CityStreamError):
    """Worth retrying with backoff: a broker or database that is briefly unreachable."""

    retriable = True


class PermanentError(CityStreamError):
    """Retrying changes nothing: bad data, a violated contract, a missing permission."""

    retriable = False


class ConfigurationError(PermanentError):
    """The deployment is wrong (bad setting, missing binary); raised at start-up with what to do."""


class DependencyUnavailable(TransientError):
    """Kafka or the database did not answer in time."""


def is_retriable(error: BaseException) -> bool:
    """True when retrying may help. Knows CityStream's errors and the transient errors of our clients."""
    if isinstance(error, CityStreamError):
        return error.retriable
    retriable = getattr(error, "retriable", None)  # aiokafka's KafkaError carries this attribute
    if isinstance(retriable, bool):
        return retriable
    return isinstance(error, (ConnectionError, TimeoutError, OSError))
