from mytrading.process.startguard import gate

gate("reconciler")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.process.shell import main  # noqa: E402
from mytrading.reconciler.daemon import ReconcilerDaemon  # noqa: E402

main(ReconcilerDaemon)
