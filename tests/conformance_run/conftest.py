# The scripts here have known verdicts, some deliberately failing: the tests below
# run them and check those verdicts, so pytest must not collect them as cases.
collect_ignore_glob = ["scripts/*.pkt"]
