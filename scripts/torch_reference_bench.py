#!/usr/bin/env python3
"""Plain-PyTorch timing of the original latent-diffusion system, timing the same three steps as
`ildm bench --suite models` (src/IlgpuDiffusion.Cli/Bench/ModelBenchmarks.cs), per configuration:

  1. autoencoder training step (VQ-VAE + PatchGAN discriminator + VGG16 LPIPS, two Adam steps),
  2. LDM training step (UNet on latents, DDPM linear schedule, Adam),
  3. sampling step (UNet forward, no grad, at t = 500).

Configurations (--config): mnist (configs/mnist.json at its own batches: 64, 64, 25 samples) and
celebhq (configs/celebhq.json at CPU-sized batches: autoencoder batch 1 at 256x256, LDM batch 2 on
32x32 latents, 1 sample). Each step reports its median time and its peak memory: the process's peak
resident memory during the timed runs above its resident memory before the step built its modules
(free heap memory handed back to the system first, so an earlier step's leftovers do not count); on
CUDA also torch.cuda.max_memory_allocated. --json FILE writes the same numbers for scripts/compare-cpu.sh.

Modules mirror the original's structure: state-dict names and shapes equal the original's listings in
tests/fixtures/parity/state_dicts (check with --check-names). Weights are random: speed does not depend
on them. Only torch is needed (no torchvision); works with torch 1.13 and 2.x. On CPU, Debian's
python3-torch uses whatever libblas.so.3 is selected: the netlib reference BLAS makes Linear/attention
~30x slower than OpenBLAS (apt-get install libopenblas0-pthread); the header line says which BLAS
library the process loaded.

  /usr/bin/python3 scripts/torch_reference_bench.py --device cpu --threads 2 --check-names
  python3 scripts/torch_reference_bench.py --device cuda --config mnist [--cuda-graphs]
"""
import argparse
import ctypes
import gc
import json
import os
import time
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, '..', 'configs')


# -------- Building blocks (the original's blocks.py: DownBlock, MidBlock, UpBlock, UpBlockUnet) --------
def get_time_embedding(time_steps, temb_dim):
    half = temb_dim // 2
    factor = 10000 ** (torch.arange(0, half, dtype=torch.float32, device=time_steps.device) / half)
    t_emb = time_steps[:, None].repeat(1, half) / factor
    return torch.cat([torch.sin(t_emb), torch.cos(t_emb)], dim=-1)


def _gn_silu_conv(norm_channels, cin, cout):
    return nn.Sequential(nn.GroupNorm(norm_channels, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, 1, 1))


class _ResAttnBlock(nn.Module):
    """Shared parameter layout of the original's blocks: n_res ResNet layers (optionally time-conditioned),
    n_attn attention layers (GroupNorm + nn.MultiheadAttention, batch_first)."""

    def _build(self, cin, cout, t_emb_dim, n_res, n_attn, num_heads, norm_channels):
        self.t_emb_dim = t_emb_dim
        self.resnet_conv_first = nn.ModuleList(
            [_gn_silu_conv(norm_channels, cin if i == 0 else cout, cout) for i in range(n_res)])
        if t_emb_dim is not None:
            self.t_emb_layers = nn.ModuleList(
                [nn.Sequential(nn.SiLU(), nn.Linear(t_emb_dim, cout)) for _ in range(n_res)])
        self.resnet_conv_second = nn.ModuleList([_gn_silu_conv(norm_channels, cout, cout) for _ in range(n_res)])
        if n_attn:
            self.attention_norms = nn.ModuleList([nn.GroupNorm(norm_channels, cout) for _ in range(n_attn)])
            self.attentions = nn.ModuleList(
                [nn.MultiheadAttention(cout, num_heads, batch_first=True) for _ in range(n_attn)])
        self.residual_input_conv = nn.ModuleList(
            [nn.Conv2d(cin if i == 0 else cout, cout, kernel_size=1) for i in range(n_res)])

    def resnet(self, i, x, t_emb):
        out = self.resnet_conv_first[i](x)
        if self.t_emb_dim is not None:
            out = out + self.t_emb_layers[i](t_emb)[:, :, None, None]
        out = self.resnet_conv_second[i](out)
        return out + self.residual_input_conv[i](x)

    def attention(self, i, out):
        b, c, h, w = out.shape
        a = self.attention_norms[i](out.reshape(b, c, h * w)).transpose(1, 2)
        a, _ = self.attentions[i](a, a, a)  # called as the original does (need_weights left at its default)
        return out + a.transpose(1, 2).reshape(b, c, h, w)

    def layers(self, out, t_emb):  # DownBlock / UpBlock body: num_layers x (ResNet layer, attention if attn)
        for i in range(self.num_layers):
            out = self.resnet(i, out, t_emb)
            if self.attn:
                out = self.attention(i, out)
        return out


class DownBlock(_ResAttnBlock):
    def __init__(self, cin, cout, t_emb_dim, down_sample, num_heads, num_layers, attn, norm_channels):
        super().__init__()
        self.num_layers, self.attn = num_layers, attn
        self._build(cin, cout, t_emb_dim, num_layers, num_layers if attn else 0, num_heads, norm_channels)
        self.down_sample_conv = nn.Conv2d(cout, cout, 4, 2, 1) if down_sample else nn.Identity()

    def forward(self, x, t_emb=None):
        return self.down_sample_conv(self.layers(x, t_emb))


class MidBlock(_ResAttnBlock):
    def __init__(self, cin, cout, t_emb_dim, num_heads, num_layers, norm_channels):
        super().__init__()
        self.num_layers = num_layers
        self._build(cin, cout, t_emb_dim, num_layers + 1, num_layers, num_heads, norm_channels)

    def forward(self, x, t_emb=None):
        out = self.resnet(0, x, t_emb)
        for i in range(self.num_layers):
            out = self.resnet(i + 1, self.attention(i, out), t_emb)
        return out


class UpBlock(_ResAttnBlock):
    """Autoencoder up block (up_sample_conv: in -> in channels) and, with unet=True, the UNet's
    UpBlockUnet (up_sample_conv: in/2 -> in/2, then concatenation with the skip; always attention)."""

    def __init__(self, cin, cout, t_emb_dim, up_sample, num_heads, num_layers, attn, norm_channels, unet=False):
        super().__init__()
        self.num_layers, self.attn = num_layers, attn
        self._build(cin, cout, t_emb_dim, num_layers, num_layers if attn else 0, num_heads, norm_channels)
        cu = cin // 2 if unet else cin
        self.up_sample_conv = nn.ConvTranspose2d(cu, cu, 4, 2, 1) if up_sample else nn.Identity()

    def forward(self, x, out_down=None, t_emb=None):
        out = self.up_sample_conv(x)
        if out_down is not None:
            out = torch.cat([out, out_down], dim=1)
        return self.layers(out, t_emb)


# -------- Models --------
class VQVAE(nn.Module):
    def __init__(self, im_channels, cfg):
        super().__init__()
        dc, mc, ds, attn = cfg['down_channels'], cfg['mid_channels'], cfg['down_sample'], cfg['attn_down']
        nc, nh, zc = cfg['norm_channels'], cfg['num_heads'], cfg['z_channels']
        self.encoder_conv_in = nn.Conv2d(im_channels, dc[0], 3, padding=1)
        self.encoder_layers = nn.ModuleList([DownBlock(dc[i], dc[i + 1], None, ds[i], nh, cfg['num_down_layers'],
                                                       attn[i], nc) for i in range(len(dc) - 1)])
        self.encoder_mids = nn.ModuleList([MidBlock(mc[i], mc[i + 1], None, nh, cfg['num_mid_layers'], nc)
                                           for i in range(len(mc) - 1)])
        self.encoder_norm_out = nn.GroupNorm(nc, dc[-1])
        self.encoder_conv_out = nn.Conv2d(dc[-1], zc, 3, padding=1)
        self.pre_quant_conv = nn.Conv2d(zc, zc, 1)
        self.embedding = nn.Embedding(cfg['codebook_size'], zc)
        self.post_quant_conv = nn.Conv2d(zc, zc, 1)
        self.decoder_conv_in = nn.Conv2d(zc, mc[-1], 3, padding=1)
        self.decoder_mids = nn.ModuleList([MidBlock(mc[i], mc[i - 1], None, nh, cfg['num_mid_layers'], nc)
                                           for i in reversed(range(1, len(mc)))])
        self.decoder_layers = nn.ModuleList([UpBlock(dc[i], dc[i - 1], None, ds[i - 1], nh, cfg['num_up_layers'],
                                                     attn[i - 1], nc) for i in reversed(range(1, len(dc)))])
        self.decoder_norm_out = nn.GroupNorm(nc, dc[0])
        self.decoder_conv_out = nn.Conv2d(dc[0], im_channels, 3, padding=1)

    def quantize(self, x):
        b, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        dist = torch.cdist(x, self.embedding.weight[None, :].repeat((b, 1, 1)))
        idx = torch.argmin(dist, dim=-1)
        q = torch.index_select(self.embedding.weight, 0, idx.view(-1))
        x = x.reshape(-1, c)
        commitment_loss = torch.mean((q.detach() - x) ** 2)
        codebook_loss = torch.mean((q - x.detach()) ** 2)
        q = x + (q - x).detach()
        return q.reshape(b, h, w, c).permute(0, 3, 1, 2), codebook_loss, commitment_loss

    def forward(self, x):
        out = self.encoder_conv_in(x)
        for blk in self.encoder_layers:
            out = blk(out)
        for blk in self.encoder_mids:
            out = blk(out)
        out = self.pre_quant_conv(self.encoder_conv_out(F.silu(self.encoder_norm_out(out))))
        z, codebook_loss, commitment_loss = self.quantize(out)
        out = self.decoder_conv_in(self.post_quant_conv(z))
        for blk in self.decoder_mids:
            out = blk(out)
        for blk in self.decoder_layers:
            out = blk(out)
        out = self.decoder_conv_out(F.silu(self.decoder_norm_out(out)))
        return out, z, codebook_loss, commitment_loss


class Unet(nn.Module):
    def __init__(self, im_channels, cfg):
        super().__init__()
        dc, mc, ds = cfg['down_channels'], cfg['mid_channels'], cfg['down_sample']
        nc, nh, td, co = cfg['norm_channels'], cfg['num_heads'], cfg['time_emb_dim'], cfg['conv_out_channels']
        self.t_emb_dim = td
        self.t_proj = nn.Sequential(nn.Linear(td, td), nn.SiLU(), nn.Linear(td, td))
        self.conv_in = nn.Conv2d(im_channels, dc[0], 3, padding=1)
        self.downs = nn.ModuleList([DownBlock(dc[i], dc[i + 1], td, ds[i], nh, cfg['num_down_layers'],
                                              cfg['attn_down'][i], nc) for i in range(len(dc) - 1)])
        self.mids = nn.ModuleList([MidBlock(mc[i], mc[i + 1], td, nh, cfg['num_mid_layers'], nc)
                                   for i in range(len(mc) - 1)])
        self.ups = nn.ModuleList([UpBlock(dc[i] * 2, dc[i - 1] if i != 0 else co, td, ds[i], nh,
                                          cfg['num_up_layers'], True, nc, unet=True)
                                  for i in reversed(range(len(dc) - 1))])
        self.norm_out = nn.GroupNorm(nc, co)
        self.conv_out = nn.Conv2d(co, im_channels, 3, padding=1)

    def forward(self, x, t):
        out = self.conv_in(x)
        t_emb = self.t_proj(get_time_embedding(torch.as_tensor(t).long(), self.t_emb_dim))
        skips = []
        for blk in self.downs:
            skips.append(out)
            out = blk(out, t_emb)
        for blk in self.mids:
            out = blk(out, t_emb)
        for blk in self.ups:
            out = blk(out, skips.pop(), t_emb)
        return self.conv_out(F.silu(self.norm_out(out)))


class Discriminator(nn.Module):
    """PatchGAN: 4x4 convs, strides 2,2,2,1, padding 1; bias on the first only; BatchNorm on 2nd/3rd."""

    def __init__(self, im_channels, conv_channels=(64, 128, 256)):
        super().__init__()
        dims = [im_channels] + list(conv_channels) + [1]
        strides = [2, 2, 2, 1]
        n = len(dims) - 1
        self.layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(dims[i], dims[i + 1], 4, strides[i], 1, bias=(i == 0)),
            nn.BatchNorm2d(dims[i + 1]) if i not in (0, n - 1) else nn.Identity(),
            nn.LeakyReLU(0.2) if i != n - 1 else nn.Identity()) for i in range(n)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('shift', torch.tensor([-.030, -.088, -.188])[None, :, None, None])
        self.register_buffer('scale', torch.tensor([.458, .448, .450])[None, :, None, None])

    def forward(self, x):  # a one-channel input broadcasts to three channels
        return (x - self.shift) / self.scale


class Vgg16Features(nn.Module):
    """torchvision vgg16().features split at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (indices kept)."""
    CFG = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']
    CUTS = [4, 9, 16, 23, 30]

    def __init__(self):
        super().__init__()
        feats, cin = [], 3
        for v in self.CFG:
            if v == 'M':
                feats.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                feats += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        for s, (begin, end) in enumerate(zip([0] + self.CUTS, self.CUTS)):
            layers = OrderedDict((str(k), feats[k]) for k in range(begin, end))
            setattr(self, 'slice%d' % (s + 1), nn.Sequential(layers))

    def forward(self, x):
        outs = []
        for s in range(len(self.CUTS)):
            x = getattr(self, 'slice%d' % (s + 1))(x)
            outs.append(x)
        return outs


class NetLinLayer(nn.Module):
    def __init__(self, chn_in):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(chn_in, 1, 1, stride=1, padding=0, bias=False))

    def forward(self, x):
        return self.model(x)


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.chns = [64, 128, 256, 512, 512]
        self.net = Vgg16Features()
        for i, c in enumerate(self.chns):
            setattr(self, 'lin%d' % i, NetLinLayer(c))
        # as in the original: the same modules again in a ModuleList (duplicate state-dict entries)
        self.lins = nn.ModuleList([getattr(self, 'lin%d' % i) for i in range(len(self.chns))])
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, in0, in1):
        outs0, outs1 = self.net(self.scaling_layer(in0)), self.net(self.scaling_layer(in1))
        val = 0
        for k in range(len(self.chns)):
            f0 = outs0[k] / (torch.sqrt(torch.sum(outs0[k] ** 2, dim=1, keepdim=True)) + 1e-10)
            f1 = outs1[k] / (torch.sqrt(torch.sum(outs1[k] ** 2, dim=1, keepdim=True)) + 1e-10)
            val = val + self.lins[k]((f0 - f1) ** 2).mean([2, 3], keepdim=True)
        return val


class LinearNoiseScheduler:
    def __init__(self, num_timesteps, beta_start, beta_end, device):
        self.num_timesteps = num_timesteps
        betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_timesteps) ** 2
        alpha_cum_prod = torch.cumprod(1. - betas, dim=0)
        self.sqrt_alpha_cum_prod = torch.sqrt(alpha_cum_prod).to(device)
        self.sqrt_one_minus_alpha_cum_prod = torch.sqrt(1 - alpha_cum_prod).to(device)

    def add_noise(self, original, noise, t):
        shape = (original.shape[0],) + (1,) * (original.dim() - 1)
        return (self.sqrt_alpha_cum_prod[t].reshape(shape) * original
                + self.sqrt_one_minus_alpha_cum_prod[t].reshape(shape) * noise)


# -------- Configurations, checks and timing --------
# The configurations timed, as in ModelBenchmarks.cs: the config file, the batch of each step where it differs
# from the config's own (celebhq at a CPU-sized batch), and the default warm-up and timing of each step.
CONFIGURATIONS = OrderedDict([
    ('mnist', dict(file='mnist.json', autoencoder_batch=None, ldm_batch=None, num_samples=None,
                   warmup=2, runs=3, min_seconds=3.0)),
    ('celebhq', dict(file='celebhq.json', autoencoder_batch=1, ldm_batch=2, num_samples=1,
                     warmup=1, runs=3, min_seconds=0.0)),
])
MAX_RUNS = 50


def state_dict_listing(module):
    params = dict(module.named_parameters())  # deduplicated: repeated modules' entries count as buffers
    return ['%s\t%s\t%s' % (n, list(t.shape), 'param' if n in params else 'buffer')
            for n, t in module.state_dict().items()]


def check_names(names_dir, modules):
    for fname, module in modules:
        path = os.path.join(names_dir, fname)
        if not os.path.isfile(path):
            print('names  %-26s no listing in %s: not checked' % (fname, names_dir))
            continue
        with open(path) as f:
            expected = [line.rstrip('\n') for line in f if line.strip()]
        got = state_dict_listing(module)
        if got != expected:
            missing = [e for e in expected if e not in got][:5]
            extra = [g for g in got if g not in expected][:5]
            raise AssertionError('%s: state dict differs (%d vs %d entries)\n  missing: %s\n  extra: %s'
                                 % (fname, len(got), len(expected), missing, extra))
        print('names  %-26s OK (%d entries)' % (fname, len(got)))


def loaded_blas():
    """BLAS, LAPACK and oneDNN (convolution) libraries mapped into this process (links resolved), per /proc/self/maps."""
    try:
        with open('/proc/self/maps') as f:
            paths = {line.split()[-1] for line in f if '/' in line and '.so' in line}
    except OSError:
        return []
    return sorted({os.path.realpath(p) for p in paths
                   if any(k in os.path.basename(p).lower() for k in ('blas', 'lapack', 'mkl', 'dnnl'))})


def status_bytes(key):
    """One memory line of /proc/self/status (VmRSS, VmHWM) in bytes; None where there is none."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def release_free_memory():
    """Collects garbage and hands glibc's free heap pages back to the system (it keeps freed blocks otherwise),
    so the resident size read next is what is alive."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_resident():
    """Lowers VmHWM to the current resident size (Linux 4.0+); False where that is not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def measure(step, dev, timing, baseline):
    """Median time of step after warm-up runs, and the peak resident memory of the timed runs above baseline
    (the resident size before the step built its modules)."""
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    for _ in range(timing['warmup']):
        step()
        sync()
    peak_reset = reset_peak_resident()
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times, start = [], time.perf_counter()
    while len(times) < timing['runs'] or (time.perf_counter() - start < timing['min_seconds']
                                          and len(times) < MAX_RUNS):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    peak = status_bytes('VmHWM')
    # the upper median for an even count, as ildm's Timing takes it
    result = dict(median_ms=sorted(times)[len(times) // 2], times_ms=times, warmup=timing['warmup'],
                  process_peak_bytes=peak - baseline if peak_reset and None not in (peak, baseline) else None)
    if dev.type == 'cuda':
        result['device_peak_bytes'] = torch.cuda.max_memory_allocated()
    return result


def latent_shape(config):
    ac = config['autoencoder_params']
    return ac['z_channels'], config['dataset_params']['im_size'] >> sum(1 for d in ac['down_sample'] if d)


# Each step builds its own modules (freed when the step is done), so its peak memory is its own. Gradients are
# dropped by zero_grad(set_to_none=True), torch 2.x's default, as the engine's Adam.ZeroGrad does.
def autoencoder_step(config, dev, batch):
    ds, ac, tc = config['dataset_params'], config['autoencoder_params'], config['train_params']
    c, s = ds['im_channels'], ds['im_size']
    vq, disc, lpips = VQVAE(c, ac).to(dev), Discriminator(c).to(dev), LPIPS().to(dev).eval()
    opt_g = torch.optim.Adam(vq.parameters(), lr=tc['autoencoder_lr'], betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=tc['autoencoder_lr'], betas=(0.5, 0.999))
    x = torch.randn(batch, c, s, s, device=dev).clamp(-1, 1)

    def step():
        recon, _, codebook_loss, commitment_loss = vq(x)
        fake = disc(recon)
        g = (F.mse_loss(recon, x) + codebook_loss + tc['commitment_beta'] * commitment_loss
             + lpips(recon, x).mean() + tc['disc_weight'] * F.mse_loss(fake, torch.ones_like(fake)))
        g.backward()
        d_fake, d_real = disc(recon.detach()), disc(x)
        d = F.mse_loss(d_fake, torch.zeros_like(d_fake)) + F.mse_loss(d_real, torch.ones_like(d_real))
        d.backward()
        opt_g.step()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)

    return 'autoencoder step b%d (+LPIPS vgg16, +disc)' % batch, step


def ldm_step(config, dev, batch):
    zc, latent = latent_shape(config)
    dc, tc = config['diffusion_params'], config['train_params']
    unet = Unet(zc, config['ldm_params']).to(dev)
    sched = LinearNoiseScheduler(dc['num_timesteps'], dc['beta_start'], dc['beta_end'], dev)
    opt = torch.optim.Adam(unet.parameters(), lr=tc['ldm_lr'])
    z = torch.randn(batch, zc, latent, latent, device=dev)

    def step():
        noise = torch.randn_like(z)
        t = torch.randint(0, sched.num_timesteps, (batch,), device=dev)
        F.mse_loss(unet(sched.add_noise(z, noise, t), t), noise).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return 'LDM step b%d (%dx%dx%d latents)' % (batch, latent, latent, zc), step


def sampling_step(config, dev, n):
    zc, latent = latent_shape(config)
    unet = Unet(zc, config['ldm_params']).to(dev).eval()  # as the original samples: attention's fast path
    xt = torch.randn(n, zc, latent, latent, device=dev)
    t500 = torch.full((n,), 500, dtype=torch.long, device=dev)

    def step():
        with torch.no_grad():
            return unet(xt, t500)

    return 'sampling step: UNet forward for %d samples' % n, step


# (name, builder, configuration key of its batch override, train_params key of the config's own batch)
STEPS = [('autoencoder', autoencoder_step, 'autoencoder_batch', 'autoencoder_batch_size'),
         ('ldm', ldm_step, 'ldm_batch', 'ldm_batch_size'),
         ('sampling', sampling_step, 'num_samples', 'num_samples')]


def cuda_graph_of(step):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def configurations(choice):
    """The configurations --config names: mnist, celebhq, all, or a config file (timed at its own batches)."""
    if choice == 'all':
        return list(CONFIGURATIONS.items())
    if choice in CONFIGURATIONS:
        return [(choice, CONFIGURATIONS[choice])]
    if not os.path.isfile(choice):
        raise SystemExit('--config: %s is neither %s nor a file' % (choice, ' | '.join(list(CONFIGURATIONS) + ['all'])))
    name = os.path.splitext(os.path.basename(choice))[0]
    return [(name, dict(CONFIGURATIONS['mnist'], file=os.path.abspath(choice), autoencoder_batch=None,
                        ldm_batch=None, num_samples=None))]


def report(dev, what, result):
    peak = result['process_peak_bytes']
    memory = 'peak +%d MiB resident' % (peak >> 20) if peak is not None else 'peak resident not measured'
    if 'device_peak_bytes' in result:
        memory += ', %d MiB on the device' % (result['device_peak_bytes'] >> 20)
    print('%-11s %-44s %10.3f ms  %s' % ('torch-' + dev, what, result['median_ms'], memory), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    ap.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: leave the default)')
    ap.add_argument('--config', default='all',
                    help='mnist | celebhq | all (default), or a config file (timed at its own batches)')
    ap.add_argument('--warmup', type=int, help='untimed runs before each step is timed (default: mnist 2, celebhq 1)')
    ap.add_argument('--runs', type=int, help='least number of timed runs per step (default 3)')
    ap.add_argument('--min-seconds', type=float,
                    help='time each step for at least this long, up to %d runs (default: mnist 3, celebhq 0)'
                    % MAX_RUNS)
    ap.add_argument('--json', help='also write the results to this file')
    ap.add_argument('--cuda-graphs', action='store_true', help='also time the sampling step as a CUDA graph')
    ap.add_argument('--check-names', action='store_true', help='compare state-dict names with the listings')
    ap.add_argument('--names-dir', default=os.path.join(HERE, '..', 'tests', 'fixtures', 'parity', 'state_dicts'),
                    help='folder of the original\'s state-dict listings (default: tests/fixtures/parity/state_dicts)')
    args = ap.parse_args()
    chosen = configurations(args.config)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(5)
    blas = loaded_blas()
    print('torch %s, device %s%s' % (torch.__version__, args.device,
                                     ', %d threads' % torch.get_num_threads() if dev.type == 'cpu'
                                     else ' (%s)' % torch.cuda.get_device_name()))
    print('BLAS/oneDNN loaded: %s' % (', '.join(blas) or 'none found in /proc/self/maps'))

    results = []
    for name, bench in chosen:
        path = os.path.join(CONFIGS, bench['file'])
        with open(path) as f:
            config = json.load(f)
        print('%s configuration (%s)' % (name, os.path.relpath(path)), flush=True)
        if args.check_names:
            c, (zc, _) = config['dataset_params']['im_channels'], latent_shape(config)
            check_names(args.names_dir, [('vqvae_%s.txt' % name, VQVAE(c, config['autoencoder_params'])),
                                         ('discriminator_%s.txt' % name, Discriminator(c)),
                                         ('lpips_vgg16.txt', LPIPS()),
                                         ('unet_%s.txt' % name, Unet(zc, config['ldm_params']))])
        timing = {k: bench[k] if getattr(args, k) is None else getattr(args, k)
                  for k in ('warmup', 'runs', 'min_seconds')}
        for step_name, build, batch_key, config_key in STEPS:
            batch = bench[batch_key] or config['train_params'][config_key]
            release_free_memory()
            baseline = status_bytes('VmRSS')
            what, step = build(config, dev, batch)
            result = measure(step, dev, timing, baseline)
            report(args.device, what, result)
            results.append(dict(config=name, step=step_name, what=what, batch=batch, **result))
            if step_name == 'sampling' and args.cuda_graphs:
                if dev.type == 'cuda':
                    report(args.device, 'sampling step (CUDA graph), %d samples' % batch,
                           measure(cuda_graph_of(step), dev, timing, None))
                else:
                    print('--cuda-graphs: needs --device cuda; skipped')
            del step

    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(system='pytorch', version=torch.__version__, device=args.device,
                           threads=torch.get_num_threads(), blas=blas, steps=results), f, indent=1)


if __name__ == '__main__':
    main()
