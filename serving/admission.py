"""Admission control: a budget of request bytes in flight, refused at once when full.

Every request holds a `Reservation` from the moment its size is known (the Content-Length header, or each
chunk as it arrives) until its work ends, even if the client was already answered 504: the memory a
request takes is bounded by a multiple of its bytes, so the budget bounds the memory of all requests.
"""

import threading

from serving import status

# A request is charged at least a quarter of the memory it is estimated to take, so that the memory of all
# requests stays under MEMORY_PER_BYTE times the budget.
MEMORY_PER_BYTE = 4

BUSY_MESSAGE = ("Server is busy: requests in flight hold {used} of {limit} bytes (--max_bytes_in_flight); "
                "retry later")


class ByteBudget:
    """A thread-safe count of bytes held by requests, never above `limit`.

    Args:
        limit: Most bytes held at once; 0 or less means no limit.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def try_take(self, amount: int) -> bool:
        """Takes `amount` bytes if they fit, and says whether they did."""
        with self._lock:
            if self.limit > 0 and self._used + amount > self.limit:
                return False
            self._used += amount
            return True

    def give_back(self, amount: int) -> None:
        with self._lock:
            self._used -= amount


class Reservation:
    """The bytes one request holds in a ByteBudget; `release` (idempotent) gives them all back."""

    def __init__(self, budget: ByteBudget):
        self._budget = budget
        self.held = 0

    def take(self, amount: int) -> None:
        """Holds `amount` more bytes.

        Raises:
            ServingError: RESOURCE_EXHAUSTED (HTTP 429) when the budget is full.
        """
        if amount <= 0:
            return
        if not self._budget.try_take(amount):
            raise status.resource_exhausted(BUSY_MESSAGE.format(used=self._budget.used, limit=self._budget.limit))
        self.held += amount

    def hold_at_least(self, amount: int) -> None:
        """Holds `amount` bytes in all, taking only what is missing (see `take`)."""
        self.take(amount - self.held)

    def cover_memory(self, memory_bytes: int) -> None:
        """Holds enough bytes for a request estimated to take `memory_bytes` of memory (see `take`)."""
        self.hold_at_least(-(-memory_bytes // MEMORY_PER_BYTE))

    def release(self) -> None:
        held, self.held = self.held, 0
        if held:
            self._budget.give_back(held)
