"""Token dropout on padded ids, and seeded, resumable, sharded batch streams."""

import datasets
import torch

from ssl_text.augment.token_views import token_dropout
from ssl_text.data.batching import BatchStream, pad_ids

CLS, SEP, PAD, MASK = 2, 3, 0, 4


def padded(rows):
    ids, mask = pad_ids(rows, PAD)
    special = (ids == CLS) | (ids == SEP) | (mask == 0)
    return ids, mask, special


def drop(rows, mask_prob, delete_prob, seed=0):
    ids, mask, special = padded(rows)
    return token_dropout(ids, mask, special, mask_token_id=MASK, pad_token_id=PAD, mask_prob=mask_prob,
                         delete_prob=delete_prob, generator=torch.Generator().manual_seed(seed))


def test_masking_never_touches_special_tokens_or_padding():
    rows = [[CLS] + list(range(10, 40)) + [SEP], [CLS, 11, 12, SEP]]
    ids, mask = drop(rows, mask_prob=0.99, delete_prob=0.0)
    assert ids[0, 0] == CLS and ids[0, 31] == SEP and ids[1, 3] == SEP
    assert (ids[1, 4:] == PAD).all() and mask.tolist()[1][4:] == [0] * 28
    assert (ids[0, 1:31] == MASK).float().mean() > 0.9


def test_deletion_keeps_order_and_special_tokens():
    rows = [[CLS] + list(range(10, 110)) + [SEP]]
    ids, mask = drop(rows, mask_prob=0.0, delete_prob=0.3)
    kept = ids[0, : int(mask.sum())].tolist()
    assert kept[0] == CLS and kept[-1] == SEP
    body = kept[1:-1]
    assert body == sorted(body) and set(body) <= set(range(10, 110))
    assert 50 < len(body) < 90  # about 70 of 100 kept
    assert ids.shape[1] == int(mask.sum())  # trimmed to the longest row


def test_dropout_is_deterministic_given_the_generator():
    rows = [[CLS] + list(range(10, 60)) + [SEP]] * 3
    a = drop(rows, 0.2, 0.1, seed=5)
    b = drop(rows, 0.2, 0.1, seed=5)
    c = drop(rows, 0.2, 0.1, seed=6)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])


def test_no_dropout_is_identity():
    rows = [[CLS, 11, 12, SEP]]
    ids, mask = drop(rows, 0.0, 0.0)
    assert ids.tolist() == rows and mask.tolist() == [[1, 1, 1, 1]]


def stream(n=10, batch=4, rank=0, world=1, seed=0):
    ds = datasets.Dataset.from_dict({"x": list(range(n))})
    return BatchStream(ds, batch, seed, lambda rows, g: rows["x"], rank=rank, world_size=world)


def test_stream_covers_each_epoch_once_and_reshuffles():
    s = stream(n=12, batch=4)
    epoch0 = sum((next(s) for _ in range(3)), [])
    epoch1 = sum((next(s) for _ in range(3)), [])
    assert sorted(epoch0) == list(range(12)) and sorted(epoch1) == list(range(12))
    assert epoch0 != epoch1


def test_stream_resumes_exactly_from_its_state():
    a = stream()
    [next(a) for _ in range(5)]
    b = stream()
    b.load_state_dict(a.state_dict())
    assert [next(a) for _ in range(4)] == [next(b) for _ in range(4)]


def test_two_ranks_see_disjoint_halves_of_each_global_batch():
    r0, r1 = stream(n=16, batch=2, rank=0, world=2), stream(n=16, batch=2, rank=1, world=2)
    seen0 = sum((next(r0) for _ in range(4)), [])
    seen1 = sum((next(r1) for _ in range(4)), [])
    assert not set(seen0) & set(seen1) and sorted(seen0 + seen1) == list(range(16))


def test_dataset_smaller_than_a_batch_wraps_around():
    s = stream(n=3, batch=8)
    assert sorted(set(next(s))) == [0, 1, 2]
