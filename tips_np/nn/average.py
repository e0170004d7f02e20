"""Weight averaging (Polyak): an exponential moving average of weights over the
training steps, updated after every optimiser step,

    avg = d avg + (1 - d) p,    d = min(decay, (1 + t) / (10 + t)),

where t counts the updates; the warm-up (TensorFlow's ExponentialMovingAverage
with num_updates) keeps the first updates from weighing the initial weights for
long. Not in the papers: an adversarial run's weights wander from step to step
around where the game stands, and their average sits nearer its middle. Batch-norm
statistics are averaged like the weights. Entries are keyed by their own names
('G/torso/block0/fc1/W')."""
from ..backend import elementwise, on_gpu


class WeightAverage:
    def __init__(self, decay, t=0, average=None):
        self.decay, self.t = decay, t
        self.average = dict(average or {})

    def update(self, arrays):
        """Move the average of every array in `arrays` (a name: array dict) towards
        it; the first update copies them."""
        self.t += 1
        d = min(self.decay, (1 + self.t) / (10 + self.t))
        for name, p in arrays.items():
            if name not in self.average:
                self.average[name] = p.copy()
            else:
                average_update(self.average[name], p, d)


def average_update(avg, p, d):
    """avg = d avg + (1 - d) p, in place (d a Python float)."""
    if on_gpu(p):
        average_update_kernel(p, p.dtype.type(d), avg)
        return
    avg *= d
    avg += (1 - d) * p


# Contract: p and avg of one shape (launched flat), float32 or float64 (T); d a
# scalar of type T; avg updated in place.
average_update_kernel = elementwise(
    "T p, T d", "T avg", "avg = d * avg + ((T)1 - d) * p", "average_update", scalars=("d",))
