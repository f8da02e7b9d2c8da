"""Pure state logic, no Faust and no I/O: user state and its updates (decay, batches, profiles),
alert rules, drift, and the offset guard. The worker reads state, calls these, writes state."""
