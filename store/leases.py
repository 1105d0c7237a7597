"""Leases on the log's partitions, so that any number of follower processes (the projector
process: dispatcher and read models) can run on one PostgreSQL, each partition followed by
exactly one of them, and a dead one's partitions taken over within a lease's length.

Every member of a group (`projector`) heartbeats a row in `follower_members` and renews
the leases it holds in `follower_leases` (one row per partition: holder, expiry). Each
round it plans (`plan_leases`, pure): its fair share of the partitions among the members
alive now (`quota`), releasing what it holds above it and taking free or expired
partitions up to it. A take is one conditional UPDATE (only if free or expired), so two
members can never both hold a partition; a member that stops renewing (killed -9, cut off)
loses its partitions when their leases expire, and the survivors take them.

Times are the processes' clocks (kept by NTP in production): a lease is seconds long,
skew milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Update

log = logging.getLogger(__name__)

# The group of the projector processes (dispatcher and read models) on one database.
PROJECTOR_GROUP = "projector"

metadata = MetaData()

follower_leases = Table(
    "follower_leases",
    metadata,
    Column("follower_group", String(100), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("holder", String(200), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

follower_members = Table(
    "follower_members",
    metadata,
    Column("follower_group", String(100), primary_key=True),
    Column("member", String(200), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)


class PartitionCountChanged(Exception):
    """The configured number of partitions is not the one the group's positions are kept
    in (`LeaseStore.ensure_partitions`)."""

    def __init__(self, group: str, stored: int, configured: int, alive: Sequence[str]) -> None:
        self.group, self.stored, self.configured = group, stored, configured
        why = (
            f"stop every projector ({', '.join(alive)} alive) to go from 1 partition to more"
            if stored == 1 and alive
            else f"the {group} group keeps its positions in {stored} partitions; "
            f"set LEADFLOW_FOLLOWER_PARTITIONS={stored} (only 1 can grow, with every "
            "projector stopped)"
        )
        super().__init__(
            f"LEADFLOW_FOLLOWER_PARTITIONS={configured}, but the database's followers run in "
            f"{stored} partition(s): {why}"
        )


# --- the plan (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    partition: int
    holder: str | None
    expires_at: datetime | None

    def held_at(self, now: datetime) -> bool:
        return self.holder is not None and self.expires_at is not None and self.expires_at > now


@dataclass(frozen=True)
class Plan:
    take: list[int]
    release: list[int]


def quota(partitions: int, members: Sequence[str], me: str) -> int:
    """How many of `partitions` `me` should hold among `members` (alive, `me` among them):
    an even share, the remainder going to the first members in name order, so the shares
    add up to `partitions` whoever computes them."""
    ordered = sorted(set(members) | {me})
    share, extra = divmod(partitions, len(ordered))
    return share + (1 if ordered.index(me) < extra else 0)


def plan_leases(me: str, members: Sequence[str], leases: Sequence[Lease], now: datetime) -> Plan:
    """What `me` should do this round: release its partitions above its quota (the highest
    first), take free or expired ones up to it (the lowest first). A member above its
    quota never takes; one below it only takes what nobody holds, so a partition moves
    only once its holder let it go or died."""
    mine = sorted(lease.partition for lease in leases if lease.holder == me and lease.held_at(now))
    wanted = quota(len(leases), members, me)
    if len(mine) > wanted:
        return Plan(take=[], release=mine[wanted:][::-1])
    free = sorted(lease.partition for lease in leases if not lease.held_at(now))
    return Plan(take=free[: wanted - len(mine)], release=[])


# --- the tables ----------------------------------------------------------------------------


# Making a group's partitions: a race lost to another member is looked at once more.
ENSURE_ATTEMPTS = 2


class LeaseStore:
    """The lease and member rows of follower groups, and the conditional updates that
    take, renew and release leases."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_partitions(
        self, group: str, partitions: int, now: datetime | None = None, ttl: timedelta | None = None
    ) -> None:
        """One lease row per partition of `group` (created free; existing rows kept).

        The count is the group's for good: the followers' positions are kept per partition,
        so another count would put streams where their positions are not. The one change
        allowed is from one partition (the whole log) to more, with no member seen within
        `ttl` before `now` (every projector stopped; without them, no member at all): each
        partition then starts from the whole log's position. Otherwise
        PartitionCountChanged.

        The missing rows are made in one transaction: a member starting at the same time
        sees none of them or all (row by row, it once read 3 of 4 and refused to start)."""
        for attempt in range(ENSURE_ATTEMPTS):
            with self.engine.connect() as conn:
                existing = set(
                    conn.execute(
                        select(follower_leases.c.partition).where(
                            follower_leases.c.follower_group == group
                        )
                    ).scalars()
                )
            if existing and len(existing) != partitions:
                alive = self._seen(group, now, ttl)
                if len(existing) != 1 or alive:
                    raise PartitionCountChanged(group, len(existing), partitions, alive)
            missing = [p for p in range(partitions) if p not in existing]
            if not missing:
                return
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(follower_leases),
                        [{"follower_group": group, "partition": p} for p in missing],
                    )
                return
            except IntegrityError:
                if attempt == ENSURE_ATTEMPTS - 1:
                    raise
                # Another member made them meanwhile: look again at what it made.

    def heartbeat(self, group: str, me: str, now: datetime, ttl: timedelta) -> list[int]:
        """Say `me` is alive and extend the leases it still holds; returns those."""
        with self.engine.begin() as conn:
            seen = conn.execute(
                update(follower_members)
                .where(follower_members.c.follower_group == group)
                .where(follower_members.c.member == me)
                .values(seen_at=now)
            )
            if seen.rowcount == 0:
                conn.execute(
                    insert(follower_members).values(follower_group=group, member=me, seen_at=now)
                )
            conn.execute(
                update(follower_leases)
                .where(follower_leases.c.follower_group == group)
                .where(follower_leases.c.holder == me)
                .where(follower_leases.c.expires_at > now)
                .values(expires_at=now + ttl)
            )
            return self._held(conn, group, me, now)

    def members(self, group: str, now: datetime, ttl: timedelta) -> list[str]:
        """The members seen within `ttl`; older rows are removed."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(follower_members)
                .where(follower_members.c.follower_group == group)
                .where(follower_members.c.seen_at < now - ttl)
            )
            return list(
                conn.execute(
                    select(follower_members.c.member).where(
                        follower_members.c.follower_group == group
                    )
                ).scalars()
            )

    def _seen(self, group: str, now: datetime | None, ttl: timedelta | None) -> list[str]:
        """The members seen within `ttl` before `now` (without them: every member's row)."""
        query = select(follower_members.c.member).where(follower_members.c.follower_group == group)
        if now is not None and ttl is not None:
            query = query.where(follower_members.c.seen_at >= now - ttl)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def partition_count(self, group: str) -> int:
        """How many partitions `group`'s followers share (1 before any follower ran)."""
        return max(1, len(self.leases(group)))

    def leases(self, group: str) -> list[Lease]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    follower_leases.c.partition,
                    follower_leases.c.holder,
                    follower_leases.c.expires_at,
                )
                .where(follower_leases.c.follower_group == group)
                .order_by(follower_leases.c.partition)
            )
            return [Lease(row.partition, row.holder, _aware(row.expires_at)) for row in rows]

    def take(self, group: str, partition: int, me: str, now: datetime, ttl: timedelta) -> bool:
        """Take the partition if it is free or its lease expired; whether `me` got it."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(follower_leases)
                .where(follower_leases.c.follower_group == group)
                .where(follower_leases.c.partition == partition)
                .where(
                    or_(
                        follower_leases.c.holder.is_(None),
                        follower_leases.c.expires_at.is_(None),
                        follower_leases.c.expires_at <= now,
                    )
                )
                .values(holder=me, expires_at=now + ttl)
            )
            return taken.rowcount == 1

    def release(self, group: str, partitions: Sequence[int], me: str) -> None:
        if not partitions:
            return
        with self.engine.begin() as conn:
            conn.execute(
                _freeing(group, me).where(follower_leases.c.partition.in_(list(partitions)))
            )

    def leave(self, group: str, me: str) -> None:
        """Release everything `me` holds and forget it (a clean stop: no lease to wait out)."""
        with self.engine.begin() as conn:
            conn.execute(_freeing(group, me))
            conn.execute(
                delete(follower_members).where(
                    and_(
                        follower_members.c.follower_group == group,
                        follower_members.c.member == me,
                    )
                )
            )

    @staticmethod
    def _held(conn: Connection, group: str, me: str, now: datetime) -> list[int]:
        return list(
            conn.execute(
                select(follower_leases.c.partition)
                .where(follower_leases.c.follower_group == group)
                .where(follower_leases.c.holder == me)
                .where(follower_leases.c.expires_at > now)
                .order_by(follower_leases.c.partition)
            ).scalars()
        )


def _freeing(group: str, me: str) -> Update:
    """The statement that frees every partition of `group` that `me` holds (narrow it with
    `.where` to free some)."""
    return (
        update(follower_leases)
        .where(follower_leases.c.follower_group == group)
        .where(follower_leases.c.holder == me)
        .values(holder=None, expires_at=None)
    )


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes for what was stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# --- a member's rounds ---------------------------------------------------------------------


class LeaseKeeper:
    """One member of a follower group: heartbeats, renews and rebalances its leases every
    `every` (a third of the lease at most), and says which partitions it may follow now.

    A partition is only followed while its lease is surely this member's: `held` drops it
    at the lease's expiry as this member last renewed it, less one round, even if the
    database cannot be reached to say so (a member cut off stops before anyone can take
    over). A partition given up to rebalance leaves `held` at once but is only freed for
    others once the work on it (`while_holding`) has stopped."""

    def __init__(
        self,
        leases: LeaseStore,
        group: str,
        partitions: int,
        me: str,
        ttl: timedelta,
        every: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.leases = leases
        self.group = group
        self.partitions = partitions
        self.me = me
        self.ttl = ttl
        self.every = every
        self.clock = clock
        self._held: frozenset[int] = frozenset()
        self._valid_until = datetime.min.replace(tzinfo=UTC)
        self._giving_up: frozenset[int] = frozenset()  # left `held`, not freed yet
        self._working: frozenset[int] = frozenset()  # what the work runs on now

    @property
    def held(self) -> frozenset[int]:
        return self._held if self.clock() < self._valid_until else frozenset()

    def round(self) -> bool:
        """One heartbeat and rebalance (blocking: run it in a thread); whether what it holds
        changed."""
        now = self.clock()
        held = set(self.leases.heartbeat(self.group, self.me, now, self.ttl))
        freed = self._giving_up - self._working
        self.leases.release(self.group, sorted(freed), self.me)
        self._giving_up -= freed
        held -= self._giving_up | freed
        members = self.leases.members(self.group, now, self.ttl)
        plan = plan_leases(self.me, members, self.leases.leases(self.group), now)
        # Still renewed until the work on them has stopped; then freed.
        self._giving_up |= frozenset(plan.release)
        held -= set(plan.release)
        for partition in plan.take:
            if self.leases.take(self.group, partition, self.me, now, self.ttl):
                held.add(partition)
        self._valid_until = now + self.ttl - self.every
        if frozenset(held) == self._held:
            return False
        log.info(
            "%s %s now follows partition(s) %s of %d",
            self.group,
            self.me,
            ", ".join(map(str, sorted(held))) or "none",
            self.partitions,
        )
        self._held = frozenset(held)
        return True

    def join(self) -> None:
        """Before the first round: the group's lease rows, one per partition (blocking).
        PartitionCountChanged if the group runs in another number of partitions."""
        self.leases.ensure_partitions(self.group, self.partitions, self.clock(), self.ttl)

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until `stop`, then leave the group (its partitions free at once)."""
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self.round)
                except Exception as error:  # the database away: `held` runs out by itself
                    log.warning("%s %s: lease round failed (%s)", self.group, self.me, error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every.total_seconds())
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.leases.leave, self.group, self.me)

    async def while_holding(
        self,
        stop: asyncio.Event,
        work: Callable[[frozenset[int], asyncio.Event], Awaitable[None]],
        check_seconds: float = 0.2,
    ) -> None:
        """Run `work(partitions, until)` on the partitions this member holds whenever it
        holds any, until `stop`; `until` is set as soon as what it holds changes (a
        partition lost after this member could not renew it, taken, or given up to
        rebalance), and `work` must then return; it starts again on the new set."""
        while not stop.is_set():
            held = self.held
            if not held:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), check_seconds)
                continue
            until = asyncio.Event()
            watching = asyncio.create_task(self._signal_change(held, stop, until, check_seconds))
            self._working = held
            try:
                await work(held, until)
            finally:
                self._working = frozenset()
                watching.cancel()

    async def _signal_change(
        self, held: frozenset[int], stop: asyncio.Event, until: asyncio.Event, check_seconds: float
    ) -> None:
        """Set `until` once this member no longer holds exactly `held` (or `stop` is set)."""
        while self.held == held and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), check_seconds)
        until.set()
