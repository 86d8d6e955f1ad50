"""What a validation has found: the stats of each channel, the class names and the s3://
references left unopened. It is the state carried between the steps of a sharded run
(:meth:`Findings.to_state`) and the source of the report (:meth:`Findings.report`)."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from .channel_stats import ChannelStats
from .context import ValidationOptions
from .cross_channel import CrossChannelRules, num_classes
from .issues import CollectingSink, IssueSink
from .label_names import LabelNames
from .layout import Channel

REPORT_VERSION = 1


class Findings:
    """Everything a validation counts, channel by channel and for the whole dataset."""

    def __init__(self, display_name: str = ".") -> None:
        self.display_name = display_name
        self.stats: Dict[str, ChannelStats] = {}
        self.labels = LabelNames()
        self.s3_unchecked = 0  # s3:// references in manifests, not opened

    def add_channel(self, channel: Channel) -> ChannelStats:
        """Start counting a channel."""
        stats = ChannelStats(channel)
        self.stats[channel.name] = stats
        return stats

    def finish(self, options: ValidationOptions, sink: IssueSink, issues: CollectingSink) -> Dict[str, Any]:
        """The checks over whole channels and across them, once every sample is counted; the report."""
        for stats in self.stats.values():
            if stats.samples == 0:
                channel = stats.channel
                sink.report("CHANNEL_EMPTY", f"the {channel.name} channel holds no valid sample", channel.root or ".")
        CrossChannelRules(options, sink, self.stats, self.labels, self.s3_unchecked).check()
        return self.report(options, issues)

    def report(self, options: ValidationOptions, issues: CollectingSink) -> Dict[str, Any]:
        """The report: JSON-ready."""
        multi = any(s.multi_label for s in self.stats.values())
        return {
            "version": REPORT_VERSION,
            "dataset": self.display_name,
            "valid": issues.error_count == 0,
            "channels": {name: s.as_dict() for name, s in self.stats.items()},
            "num_classes": num_classes(options, self.labels, self.stats),
            "label_names": self.labels.names,
            "multi_label": multi,
            "options": options.as_dict(),
            "errors": [i.as_dict() for i in issues.errors],
            "warnings": [i.as_dict() for i in issues.warnings],
            "counts": dict(sorted(issues.counts.items())),
        }

    def to_state(self, issues: CollectingSink) -> Dict[str, Any]:
        """What was found so far, with the issues, JSON-ready (for :meth:`from_state`)."""
        return {
            "display_name": self.display_name,
            "stats": [s.to_state() for s in self.stats.values()],
            "issues": issues.to_state(),
            "label_names": self.labels.names,
            "label_names_file": self.labels.file,
            "s3_unchecked": self.s3_unchecked,
        }

    def load(self, state: Mapping[str, Any], issues: CollectingSink) -> None:
        """Take back what :meth:`to_state` saved; its issues are added to ``issues``."""
        self.display_name = state["display_name"]
        self.stats = {}
        for stats_state in state["stats"]:
            stats = ChannelStats.from_state(stats_state)
            self.stats[stats.channel.name] = stats
        issues.absorb(state["issues"])
        self.labels = LabelNames(state["label_names"], state["label_names_file"])
        self.s3_unchecked = state["s3_unchecked"]
