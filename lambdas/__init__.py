"""The Lambda functions of the cloud workflow: one folder per function, each a thin ``handler``
module (parse the event, wire AWS clients) over a pure ``logic`` module that tests call directly."""
