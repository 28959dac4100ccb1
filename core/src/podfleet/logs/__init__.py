"""Task logs that outlive their pods: where the watcher keeps each finished pod's log."""
