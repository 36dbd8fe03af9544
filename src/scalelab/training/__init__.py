"""Loss, optimiser and the fit loop: Lightning does the training, these modules configure it."""
