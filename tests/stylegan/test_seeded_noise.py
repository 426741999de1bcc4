import pytest
import torch

from generation.stylegan import GeneratorConfig, random_generator

CONFIG = GeneratorConfig(z_dim=32, w_dim=32, c_dim=0, img_resolution=16, img_channels=3, mapping_layers=2,
                         channel_base=256, channel_max=32)  # fmt: skip


@pytest.fixture(scope="module")
def G():
    G = random_generator(CONFIG, seed=0)
    with torch.no_grad():
        for module in G.synthesis.modules():
            if hasattr(module, "noise_strength"):
                module.noise_strength.fill_(1.0)
    return G


@pytest.fixture(scope="module")
def ws(G):
    with torch.no_grad():
        return G.mapping(torch.randn(3, CONFIG.z_dim, generator=torch.Generator().manual_seed(0)), None)


def render(G, ws, seeds):
    with torch.no_grad():
        return G.synthesis(ws, noise_mode="seeded", noise_seeds=seeds)


def test_it_gives_a_sample_the_same_image_whatever_else_is_in_a_batch_of_its_size(G, ws):
    batched = render(G, ws, [3, 7, None])
    among_copies = render(G, ws[1:2].repeat(3, 1, 1), [7, 7, 7])
    assert torch.equal(among_copies[1], batched[1])
    # Another batch size may take another convolution algorithm: equal to rounding only.
    alone = render(G, ws[1:2], [7])
    assert torch.allclose(alone[0], batched[1], atol=1e-4)


def test_it_uses_the_constant_noise_for_a_seed_of_none(G, ws):
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(render(G, ws, [None, None, None]), const, atol=1e-6)


def test_it_draws_different_noise_for_different_seeds(G, ws):
    same_latent = ws[:1].repeat(2, 1, 1)
    images = render(G, same_latent, [1, 2])
    assert not torch.allclose(images[0], images[1])


def test_it_refuses_a_seed_list_that_does_not_match_the_batch(G, ws):
    with pytest.raises(ValueError, match="one noise seed"):
        render(G, ws, [1])
