"""`superseller simulate`: the product's promise (every seller fresh by 06:00) tested over
simulated days, with faults, against the sandbox. Sits above the features; only cli imports it."""
