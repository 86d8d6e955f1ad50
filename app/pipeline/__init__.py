"""The cloud workflow's steps, run on one machine: validate -> pack -> train -> gate ->
register -> deploy (blue/green) -> classify. Each step's logic is the one the AWS workflow uses."""
