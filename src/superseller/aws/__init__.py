"""Optional AWS tooling (`superseller[aws]`): the same scheduling set as deploy/terraform."""
