"""Training: the trainer loop, losses, learning-rate schedules."""
