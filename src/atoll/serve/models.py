"""The models a server holds, and how they follow their aliases in the registry.

A *slot* is what clients name (``credit-risk``): a reference such as
``credit-risk@production`` plus the version it points at now, and optionally a
canary or shadow challenger. Each loaded version owns a :class:`Batcher` and
a thread. Every ``reload_interval_s`` each worker asks the registry where the
aliases point; when one has moved, the new version is loaded and verified off
the event loop, then swapped in with one assignment, so no request fails and
none sees half a model. The old version finishes its queue before it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from atoll.errors import NotFoundError
from atoll.model.predictor import Prediction, Predictor
from atoll.spec_serve import ServeSpec
from atoll.store.registry import Registry
from atoll.types import ModelRef

from .batching import Batcher
from .runner import predictor_runner
from .threads import NumericThreads

log = logging.getLogger("atoll.serve")

BatchObserver = Callable[[str, int, int, float, int], None]
"""Called after each batch with (model, version, rows, wait seconds, requests still queued)."""


@dataclass
class LoadedVersion:
    """One version in memory: its predictor and the batcher in front of it."""

    name: str
    version: int
    predictor: Predictor
    batcher: Batcher[Prediction]


@dataclass
class ModelSlot:
    """What a client names: a reference, its live version and optional challengers."""

    ref: ModelRef
    current: LoadedVersion
    canary: LoadedVersion | None = None
    canary_percent: float = 0.0
    shadow: LoadedVersion | None = None

    @property
    def name(self) -> str:
        return self.ref.name

    def pick(self) -> tuple[LoadedVersion, str]:
        """The version that answers this request, and its role in the log."""
        if self.canary is not None and random.random() * 100 < self.canary_percent:
            return self.canary, "canary"
        return self.current, "primary"

    def versions(self) -> list[LoadedVersion]:
        return [v for v in (self.current, self.canary, self.shadow) if v is not None]


@dataclass
class ModelSet:
    """Every slot this worker serves, loaded through ``Registry.load_predictor``."""

    registry: Registry
    spec: ServeSpec
    allow_imports: Sequence[str] = ()
    on_batch: BatchObserver | None = None
    cores: int = 1
    """This worker's share of the cores, for large batches (see :mod:`atoll.serve.threads`)."""
    slots: dict[str, ModelSlot] = field(default_factory=dict)
    _retired: list[LoadedVersion] = field(default_factory=list)

    async def load(self, refs: Sequence[ModelRef]) -> None:
        """Load every reference (each must resolve), with its canary and shadow if configured."""
        for ref in refs:
            self.slots[ref.name] = await self._load_slot(ref)

    def get(self, name: str) -> ModelSlot:
        slot = self.slots.get(name)
        if slot is None:
            raise NotFoundError(f"model {name!r} is not served here", model=name)
        return slot

    def version(self, name: str, version: int) -> LoadedVersion:
        """A specific loaded version of a served model (V2's ``/versions/{v}``)."""
        for loaded in self.get(name).versions():
            if loaded.version == version:
                return loaded
        raise NotFoundError(f"version {version} of {name!r} is not served here", model=name)

    async def watch(self) -> None:
        """Follow alias moves forever (a lifespan task); a failed check is retried next tick."""
        while True:
            await asyncio.sleep(self.spec.reload_interval_s)
            try:
                await self.refresh()
            except Exception:
                log.warning("could not check the registry for moved aliases", exc_info=True)

    async def refresh(self) -> None:
        """Swap in any version an alias now points at; close the ones swapped out."""
        for name, slot in list(self.slots.items()):
            wanted = await asyncio.to_thread(self._resolve, slot.ref)
            if wanted != slot.current.version:
                fresh = await self._load_version(name, wanted)
                old, slot.current = slot.current, fresh
                log.info("%s now serves version %d (was %d)", slot.ref, wanted, old.version)
                self._retire(old)
            await self._refresh_challengers(slot)
        await self._close_retired()

    async def close(self) -> None:
        for slot in self.slots.values():
            for loaded in slot.versions():
                await loaded.batcher.close()
        await self._close_retired()

    async def _load_slot(self, ref: ModelRef) -> ModelSlot:
        version = await asyncio.to_thread(self._resolve, ref)
        slot = ModelSlot(ref, await self._load_version(ref.name, version))
        await self._refresh_challengers(slot)
        return slot

    async def _refresh_challengers(self, slot: ModelSlot) -> None:
        if slot.ref.version is not None:
            return
        canary, shadow = self.spec.canary, self.spec.shadow
        if canary is not None:
            slot.canary = await self._challenger(slot, slot.canary, canary.alias)
            slot.canary_percent = canary.percent
        if shadow is not None:
            slot.shadow = await self._challenger(slot, slot.shadow, shadow.alias)

    async def _challenger(
        self, slot: ModelSlot, loaded: LoadedVersion | None, alias: str
    ) -> LoadedVersion | None:
        """The version a challenger alias points at (None while the alias does not exist)."""
        try:
            wanted = await asyncio.to_thread(self._resolve, ModelRef(slot.name, alias=alias))
        except NotFoundError:
            if loaded is not None:
                self._retire(loaded)
            return None
        if loaded is not None and loaded.version == wanted:
            return loaded
        if loaded is not None:
            self._retire(loaded)
        return await self._load_version(slot.name, wanted)

    def _resolve(self, ref: ModelRef) -> int:
        return self.registry.get_version(ref).version

    async def _load_version(self, name: str, version: int) -> LoadedVersion:
        ref = f"{name}@{version}"
        predictor = await asyncio.to_thread(
            self.registry.load_predictor, ref, list(self.allow_imports)
        )
        batching = self.spec.batching
        observer = self.on_batch

        def on_batch(rows: int, wait_s: float) -> None:
            if observer is not None:
                observer(name, version, rows, wait_s, batcher.depth)

        threads = NumericThreads(self.cores)
        batcher: Batcher[Prediction] = Batcher(
            threads.wrap(predictor_runner(predictor, ref)),
            max_rows=batching.max_batch_size,
            max_wait_s=batching.max_latency_ms / 1000,
            max_requests=batching.max_queue_requests,
            enabled=batching.enabled,
            thread_name=f"atoll-{name}-{version}",
            on_batch=on_batch,
            thread_init=threads.start,
            inline_max_rows=batching.inline_max_rows,
        )
        batcher.start()
        return LoadedVersion(name, version, predictor, batcher)

    def _retire(self, loaded: LoadedVersion) -> None:
        self._retired.append(loaded)

    async def _close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for loaded in retired:
            with contextlib.suppress(Exception):
                await loaded.batcher.close()
