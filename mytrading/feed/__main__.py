from mytrading.process.startguard import gate

gate("feed")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.feed.daemon import FeedDaemon  # noqa: E402
from mytrading.process.shell import main  # noqa: E402

main(FeedDaemon)
