from mytrading.daemon import main
from mytrading.reconciler.daemon import ReconcilerDaemon

main(ReconcilerDaemon)
