"""After training: final-policy evaluation (seeded stochastic and greedy episodes), saving and loading policies,
and videos of one episode."""
