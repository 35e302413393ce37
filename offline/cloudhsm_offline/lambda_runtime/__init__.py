"""The Lambda service offline: a function run in worker processes on the world's virtual clock."""
