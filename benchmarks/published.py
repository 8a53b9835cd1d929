"""Published Kodak rate-distortion results of other overfitted (per-image) codecs, as constants with their sources.

Every entry says where its numbers come from and whether they are exact (the authors' own result files) or
approximate (read off a plot). All are RGB PSNR in dB against bpp of the whole bitstream on the Kodak set; the
averaging convention is the authors' (usually: mean bpp and mean PSNR over images at one setting), which is not
exactly ours (mean PSNR at matched bpp), so compare shapes and orders of magnitude, not the second decimal.

``CURVES[name] = {"label", "bpp", "psnr", "images", "source", "exact", "note"}``; ``bpp``/``psnr`` may be empty
when no trustworthy figure could be transcribed (the entry is then kept for its citation and skipped in plots).
``coolchic_average(images)`` averages the per-image Cool-chic results over any subset (e.g. kodim01-12, the images
in ../shared/data/kodak), so that one curve is on the same images as ours.
"""

from __future__ import annotations

# Cool-chic (Ladune, Philippe, Henry, Clare, Leguay: "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image
# Codec", ICCV 2023, arXiv:2212.05458). Exact per-image results released by the authors with the paper's code:
# github.com/Orange-OpenSource/Cool-Chic @ f54e215d801ff4140b3f3e244bc3c974110efdb7, results/kodak/raw_results.tsv
# (decoded bitstreams; later copied to results/v1.0/image-kodak.tsv). Rows: image -> [(lambda, bpp, psnr_db), ...].
COOLCHIC_KODAK_PER_IMAGE: dict[str, list[tuple[float, float, float]]] = {
    "kodim01": [(1e-4, 2.4696, 40.6010), (5e-4, 1.4829, 34.8102), (4e-3, 0.3710, 26.9880), (2e-2, 0.1109, 23.6792)],
    "kodim02": [(1e-4, 1.3428, 40.4517), (5e-4, 0.5237, 35.4209), (4e-3, 0.1019, 30.4926), (2e-2, 0.0318, 27.7049)],
    "kodim03": [(1e-4, 1.0270, 42.3178), (5e-4, 0.5130, 37.7983), (4e-3, 0.1115, 31.0926), (2e-2, 0.0435, 28.4703)],
    "kodim04": [(1e-4, 1.5378, 40.7992), (5e-4, 0.6394, 35.4908), (4e-3, 0.1556, 30.4595), (2e-2, 0.0492, 27.3324)],
    "kodim05": [(1e-4, 2.5733, 40.4854), (5e-4, 1.5016, 34.5922), (4e-3, 0.5677, 27.6504), (2e-2, 0.1735, 23.0169)],
    "kodim06": [(1e-4, 2.0338, 40.8979), (5e-4, 1.1331, 35.8004), (4e-3, 0.2915, 27.8002), (2e-2, 0.0635, 23.9723)],
    "kodim07": [(1e-4, 1.1959, 41.7904), (5e-4, 0.6070, 37.2540), (4e-3, 0.2242, 31.4992), (2e-2, 0.0855, 27.0282)],
    "kodim08": [(1e-4, 2.6173, 40.2199), (5e-4, 1.5615, 34.9526), (4e-3, 0.6078, 27.4108), (2e-2, 0.2092, 22.8990)],
    "kodim09": [(1e-4, 1.0780, 40.7117), (5e-4, 0.5471, 37.2129), (4e-3, 0.1535, 31.3368), (2e-2, 0.0611, 27.6873)],
    "kodim10": [(1e-4, 1.1421, 40.6443), (5e-4, 0.5734, 37.0355), (4e-3, 0.1568, 31.1256), (2e-2, 0.0539, 26.9667)],
    "kodim11": [(1e-4, 1.9094, 40.9852), (5e-4, 0.9526, 35.2824), (4e-3, 0.2201, 28.3504), (2e-2, 0.0694, 25.2794)],
    "kodim12": [(1e-4, 1.2537, 41.5490), (5e-4, 0.5206, 36.3315), (4e-3, 0.1074, 31.0451), (2e-2, 0.0463, 28.5875)],
    "kodim13": [(1e-4, 3.2897, 39.9409), (5e-4, 2.0187, 34.1603), (4e-3, 0.6527, 26.1415), (2e-2, 0.1663, 21.8665)],
    "kodim14": [(1e-4, 2.3138, 40.2422), (5e-4, 1.3006, 34.7007), (4e-3, 0.3455, 28.1829), (2e-2, 0.1038, 24.3168)],
    "kodim15": [(1e-4, 1.4461, 41.0685), (5e-4, 0.6218, 36.0522), (4e-3, 0.1523, 30.3638), (2e-2, 0.0548, 27.5718)],
    "kodim16": [(1e-4, 1.4530, 41.5415), (5e-4, 0.6848, 35.9921), (4e-3, 0.1500, 29.2817), (2e-2, 0.0380, 26.6883)],
    "kodim17": [(1e-4, 1.3415, 40.7453), (5e-4, 0.6521, 36.4666), (4e-3, 0.1878, 30.5722), (2e-2, 0.0685, 26.9707)],
    "kodim18": [(1e-4, 2.3448, 39.8264), (5e-4, 1.2081, 34.4463), (4e-3, 0.4142, 28.2785), (2e-2, 0.0807, 23.7372)],
    "kodim19": [(1e-4, 1.6466, 40.4897), (5e-4, 0.8841, 35.4706), (4e-3, 0.2141, 29.2371), (2e-2, 0.0730, 25.1263)],
    "kodim20": [(1e-4, 1.1586, 41.4795), (5e-4, 0.6701, 37.2703), (4e-3, 0.1512, 30.8435), (2e-2, 0.0584, 27.3706)],
    "kodim21": [(1e-4, 1.6645, 40.4976), (5e-4, 0.9865, 36.2208), (4e-3, 0.2770, 28.5838), (2e-2, 0.0803, 24.6919)],
    "kodim22": [(1e-4, 1.9998, 40.3036), (5e-4, 0.9032, 34.6233), (4e-3, 0.2065, 28.7219), (2e-2, 0.0600, 25.6202)],
    "kodim23": [(1e-4, 0.9506, 41.6834), (5e-4, 0.4492, 37.8908), (4e-3, 0.1414, 32.2467), (2e-2, 0.0553, 28.1507)],
    "kodim24": [(1e-4, 2.1935, 40.9184), (5e-4, 1.2395, 35.2164), (4e-3, 0.4008, 28.3410), (2e-2, 0.1113, 23.7992)],
}
COOLCHIC_SOURCE = ("Ladune et al., COOL-CHIC, ICCV 2023 (arXiv:2212.05458); exact per-image values from "
                   "github.com/Orange-OpenSource/Cool-Chic@f54e215 results/kodak/raw_results.tsv")


def coolchic_average(images: list[str] | None = None) -> dict[str, list[float]]:
    """Mean bpp and mean PSNR per lambda over ``images`` (default: all 24), lowest rate first."""
    names = sorted(COOLCHIC_KODAK_PER_IMAGE) if images is None else list(images)
    missing = [n for n in names if n not in COOLCHIC_KODAK_PER_IMAGE]
    if missing or not names:
        raise ValueError(f"no Cool-chic results for {missing or 'an empty image list'}")
    lambdas = [row[0] for row in COOLCHIC_KODAK_PER_IMAGE[names[0]]]
    bpp, psnr = [], []
    for i, _ in enumerate(lambdas):
        bpp.append(sum(COOLCHIC_KODAK_PER_IMAGE[n][i][1] for n in names) / len(names))
        psnr.append(sum(COOLCHIC_KODAK_PER_IMAGE[n][i][2] for n in names) / len(names))
    order = sorted(range(len(bpp)), key=bpp.__getitem__)
    return {"bpp": [bpp[i] for i in order], "psnr": [psnr[i] for i in order]}


_cc24 = coolchic_average()

CURVES: dict[str, dict] = {
    "coin": {
        "label": "COIN (published)",
        # Dupont, Goliński, Alizadeh, Teh, Doucet: "COIN: COmpression with Implicit Neural representations",
        # ICLR 2021 Neural Compression workshop, arXiv:2103.03123, Fig. 4 (Kodak RD curve). Exact values from the
        # authors' repository: github.com/EmilienDupont/coin @ 5a8d310 results.json (same numbers are shipped as
        # results/kodak/coin.json in github.com/EmilienDupont/coinpp).
        "bpp": [0.0368, 0.07361, 0.1604, 0.3074, 0.6109, 1.209],
        "psnr": [22.408, 23.205, 24.6410833, 26.412125, 28.408, 30.644],
        "images": "kodim01-24",
        "source": "Dupont et al., COIN, arXiv:2103.03123; github.com/EmilienDupont/coin@5a8d310 results.json",
        "exact": True,
        "note": "average over the 24 Kodak images",
    },
    "coin++": {
        "label": "COIN++ (published)",
        # Dupont, Loya, Alizadeh, Goliński, Teh, Doucet: "COIN++: Neural Compression Across Modalities", TMLR 2022,
        # arXiv:2201.12904 (Kodak RD figure). Exact values from the authors' repository:
        # github.com/EmilienDupont/coinpp @ f90a984 results/kodak/coinpp.json ("quantized to 5 bits").
        "bpp": [0.06656413525342941, 0.1324574202299118, 0.2659042477607727, 0.3982515782117843, 0.5365909337997437],
        "psnr": [23.68178367614746, 24.926698684692383, 26.142541885375977, 27.031984329223633, 27.798105239868164],
        "images": "kodim01-24",
        "source": "Dupont et al., COIN++, arXiv:2201.12904; github.com/EmilienDupont/coinpp@f90a984 "
                  "results/kodak/coinpp.json",
        "exact": True,
        "note": "average over the 24 Kodak images (patch-based, meta-learned on the Vimeo-90k/CLIC training set)",
    },
    "coolchic": {
        "label": "Cool-chic v1 (published)",
        "bpp": _cc24["bpp"],
        "psnr": _cc24["psnr"],
        "images": "kodim01-24",
        "source": COOLCHIC_SOURCE,
        "exact": True,
        # The authors' own average (results/kodak/average_results.tsv @ 22df0f4: same bpp; PSNR 25.318, 29.108,
        # 35.702, 40.736 dB) is the PSNR of the mean MSE, 0.1-0.45 dB below the mean of per-image PSNR used here.
        "note": "mean bpp and mean PSNR per lambda over the 24 images, computed here from the per-image table",
    },
    "gaussianimage": {
        "label": "GaussianImage (published)",
        # Zhang, Ge, Xu, He, Wang, Qin, Lu, Geng, Zhang: "GaussianImage: 1000 FPS Image Representation and
        # Compression by 2D Gaussian Splatting", ECCV 2024, arXiv:2403.08551, Kodak rate-distortion figure
        # (also img/kodak_codec.png in github.com/Xinjie-Q/GaussianImage). The authors publish this curve only as a
        # plot, and no readable copy of it was available where this file was written, so no values are given
        # rather than invented ones. To add them: read the points off that figure and set exact=False.
        "bpp": [],
        "psnr": [],
        "images": "kodim01-24",
        "source": "Zhang et al., GaussianImage, ECCV 2024, arXiv:2403.08551, Kodak RD figure",
        "exact": False,
        "note": "not transcribed (figure only; see comment in benchmarks/published.py)",
    },
}
