"""CDK constructs, one per logical unit, and the stacks that compose them."""
