"""AutoSync: a district's sync schedule, its cadence arithmetic, and the scheduler that enqueues due runs."""
