"""After training: final-policy evaluation (seeded stochastic and greedy episodes), saving and loading policies,
videos of one episode, and the uniform-random policy's score (the lower anchor of normalized scores)."""
