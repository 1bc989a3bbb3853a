from mytrading.daemon import main
from mytrading.feed.daemon import FeedDaemon

main(FeedDaemon)
