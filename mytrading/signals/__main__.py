from mytrading.process.startguard import gate

gate("signals")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.process.shell import main  # noqa: E402
from mytrading.signals.daemon import SignalsDaemon  # noqa: E402

main(SignalsDaemon)
