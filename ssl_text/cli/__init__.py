"""The `ssl-text` command line (`main`), with the SimCLRv2 commands (`simclrv2`) and `augment` (`augment`)."""
