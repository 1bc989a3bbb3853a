from mytrading.daemon import main
from mytrading.signals.daemon import SignalsDaemon

main(SignalsDaemon)
