from mytrading.process.prestart import begin

begin("signals")  # first: the start gate, the collector off (process/prestart.py)

from mytrading.process.shell import main  # noqa: E402
from mytrading.signals.daemon import SignalsDaemon  # noqa: E402

main(SignalsDaemon)
