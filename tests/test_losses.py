"""The in-batch-negatives loss against its definition, and the cached loss against the plain one."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from encoderkit.losses import CachedContrastiveLoss, contrastive_loss


def test_contrastive_loss_is_cross_entropy_over_scaled_cosines():
    torch.manual_seed(0)
    queries, documents = torch.randn(4, 8), torch.randn(6, 8)  # 4 positives + 2 hard negatives
    cosines = torch.tensor([[F.cosine_similarity(q, d, dim=0).item() for d in documents] for q in queries])
    expected = -torch.log_softmax(20 * cosines, dim=1).diagonal().mean()
    assert contrastive_loss(queries, documents) == pytest.approx(expected.item(), rel=1e-5)
    backwards = -torch.log_softmax(20 * cosines[:, :4].T, dim=1).diagonal().mean()
    symmetric = contrastive_loss(queries, documents, symmetric=True)
    assert symmetric == pytest.approx(((expected + backwards) / 2).item(), rel=1e-5)


class Tower(nn.Module):
    """A tiny encoder with dropout: (ids, mask) -> (B, 8)."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(50, 16)
        self.dropout = nn.Dropout(0.3)
        self.projection = nn.Linear(16, 8)

    def forward(self, ids, mask):
        states = self.dropout(self.embedding(ids)) * mask.unsqueeze(-1)
        return self.projection(states.sum(1) / mask.sum(1, keepdim=True))


def batch(generator, rows, length=7):
    ids = torch.randint(1, 50, (rows, length), generator=generator)
    mask = torch.arange(length).expand(rows, length) < torch.randint(2, length + 1, (rows, 1), generator=generator)
    return ids * mask, mask


@pytest.mark.parametrize("symmetric", [False, True])
def test_cached_loss_gives_the_gradients_of_the_plain_loss(symmetric):
    generator = torch.Generator().manual_seed(1)
    queries, documents = batch(generator, 24), batch(generator, 30)  # lengths 2..7: chunks are sorted and cut
    gradients, values = [], []
    for cached in (False, True):
        torch.manual_seed(0)
        model = Tower().eval()  # without dropout the two losses see the same embeddings
        if cached:
            loss = CachedContrastiveLoss(20.0, symmetric, chunk_size=5)(model, model, queries, documents)
        else:
            loss = contrastive_loss(model(*queries), model(*documents), 20.0, symmetric)
        (loss / 2).backward()  # the loop scales the loss under gradient accumulation
        values.append(loss.item())
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
    assert values[0] == pytest.approx(values[1], rel=1e-5)
    for name, gradient in gradients[0].items():
        assert torch.allclose(gradient, gradients[1][name], atol=1e-6), name


def test_cached_loss_replays_each_chunk_with_the_dropout_masks_of_the_first_pass():
    generator = torch.Generator().manual_seed(3)
    queries, documents = batch(generator, 12), batch(generator, 12)
    model, seen = Tower(), {False: [], True: []}  # outputs without a graph (step 1) and with one (step 3)

    def recording(ids, mask):
        embedded = model(ids, mask)
        seen[torch.is_grad_enabled()].append((ids.shape, embedded.detach().clone()))
        return embedded

    torch.manual_seed(4)
    CachedContrastiveLoss(20.0, False, chunk_size=5)(recording, recording, queries, documents).backward()
    assert [shape for shape, _ in seen[False]] == [shape for shape, _ in seen[True]]
    assert any(shape[1] < 7 for shape, _ in seen[False])  # some chunk was cut below the batch's padding
    for (_, first), (_, replayed) in zip(seen[False], seen[True]):
        assert torch.equal(first, replayed)


def test_cached_loss_leaves_the_random_state_as_one_pass_would():
    generator = torch.Generator().manual_seed(2)
    queries, documents = batch(generator, 6), batch(generator, 6)
    model = Tower()
    torch.manual_seed(9)
    loss = CachedContrastiveLoss(20.0, False, chunk_size=4)(model, model, queries, documents)
    state_after_forward = torch.get_rng_state()
    loss.backward()
    assert torch.equal(torch.get_rng_state(), state_after_forward)  # the replay restores it
