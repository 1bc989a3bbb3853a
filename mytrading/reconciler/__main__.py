from mytrading.process.prestart import begin

begin("reconciler")  # first: the start gate, the collector off (process/prestart.py)

from mytrading.process.shell import main  # noqa: E402
from mytrading.reconciler.daemon import ReconcilerDaemon  # noqa: E402

main(ReconcilerDaemon)
