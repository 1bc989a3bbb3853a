from mytrading.process.prestart import begin

begin("feed")  # first: the start gate, the collector off (process/prestart.py)

from mytrading.feed.daemon import FeedDaemon  # noqa: E402
from mytrading.process.shell import main  # noqa: E402

main(FeedDaemon)
