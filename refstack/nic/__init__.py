"""The Onload hardware model: the filter table, and the model that ties endpoints,
filters, rings and handover together (see :mod:`refstack.nic.model`)."""
