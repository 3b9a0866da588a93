"""One model lineage across the replicas of a group.

Exactly one replica trains at a time: the one the broker elects (`LineageLink.trainer`);
the others' retrain requests are dropped. Every replica hands the training windows it
archives to the others, so the trainer trains on every partition's series wherever
they are read, and a replica elected later has them too. Promoted weights are
published with their version; each replica adopts newer ones at a batch boundary,
rebuilding every series' state with them (as a local promotion does).
"""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from collections.abc import Mapping

from connectors.base import LineageLink
from models.base import Trainable
from streamer.core.records import Event
from streamer.engine import checkpoint
from streamer.engine.retrain import Retrainer

log = logging.getLogger(__name__)


class Lineage:
    """The retrain hook of a replica in a group (see module doc)."""

    def __init__(self, retrainer: Retrainer, link: LineageLink) -> None:
        self.retrainer = retrainer
        self.model: Trainable = retrainer.model
        self.link = link
        self.published = self.model.version  # the initial weights are everyone's already
        self.adopted = 0
        self._was_trainer = False
        retrainer.allowed = lambda: link.trainer

    @property
    def outcomes(self) -> Mapping[str, int]:
        return self.retrainer.outcomes | Counter(adopted=self.adopted)

    @property
    def trainer(self) -> bool:
        return self.link.trainer

    def poll(self, now_ns: int) -> list[Event]:
        """At a batch boundary: exchange windows, adopt newer weights, and as the
        trainer, train and publish."""
        own = self.model.take_shared()
        if own is not None and len(own):
            self.link.send_windows(pickle.dumps(own, protocol=5))
        for blob in self.link.take_windows():
            self.model.add_shared(checkpoint.loads(blob))
        latest = self.link.latest()
        if latest is not None and latest[0] > self.model.version:
            self.model.adopt_weights(checkpoint.loads(latest[1]))
            self.published = max(self.published, latest[0])
            self.adopted += 1
            log.info("serving version %d of the group's model, as published", latest[0])
        trainer = self.link.trainer
        if trainer != self._was_trainer:
            self._was_trainer = trainer
            log.info(
                "this replica %s the group's model", "trains" if trainer else "no longer trains"
            )
        events = self.retrainer.poll(now_ns)
        if trainer and self.model.version > self.published:
            self.link.publish(self.model.version, pickle.dumps(self.model.weights(), protocol=5))
            self.published = self.model.version
            log.info("published version %d of the group's model", self.model.version)
        return events

    def stop(self) -> None:
        self.retrainer.stop()
        self.link.close()
