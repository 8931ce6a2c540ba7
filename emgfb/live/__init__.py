"""One live (or replayed) run wired together, off the GUI thread.

The package owns the live run, split into rooms that each do one job:

- :mod:`~emgfb.live.channels` - the channel set-up (montage, counts-to-µV scale,
  front-end check), resolved once for live, headless sessions, ``record`` and LSL;
- :mod:`~emgfb.live.pump` - :class:`SourcePump`, the one loop that reads a source, hands
  raw chunks to their sinks at once and keeps the ``--seconds`` promise;
- :mod:`~emgfb.live.sinks` - the recording and Lab Streaming Layer sinks;
- :mod:`~emgfb.live.hub` - the stream hub: ring buffers, newest index, host times;
- :mod:`~emgfb.live.playback` - pause, seek and speed of a replay;
- :mod:`~emgfb.live.status` - the status snapshot with its state enum;
- :mod:`~emgfb.live.session` - :class:`LiveSession`, the acquisition and processing
  workers (:class:`~emgfb.worker.Worker`) wiring all of the above.

May import ``acquisition``, ``dsp``, ``recording``, ``lsl_out``, ``montage``, ``config``,
``hardware``, ``records``, ``worker`` and ``errors``; never Qt (the GUI imports this
package, not the other way round).
"""

from emgfb.live.channels import ChannelSetup, resolve_channels
from emgfb.live.hub import STREAMS, StreamHub
from emgfb.live.pump import GRACE_S, PumpEnd, SourcePump
from emgfb.live.session import DEFAULT_REFERENCE_UV, LiveSession, Normalisation
from emgfb.live.sinks import SessionError
from emgfb.live.status import SessionCounters, SessionState, SessionStatus

__all__ = [
    "DEFAULT_REFERENCE_UV", "GRACE_S", "STREAMS", "ChannelSetup", "LiveSession",
    "Normalisation", "PumpEnd", "SessionCounters", "SessionError", "SessionState",
    "SessionStatus", "SourcePump", "StreamHub", "resolve_channels",
]
