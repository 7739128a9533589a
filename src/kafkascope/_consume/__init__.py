"""The process span: decorators, context managers and the zero-code consumer tracker."""
