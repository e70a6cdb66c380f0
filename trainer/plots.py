"""Scatter plots of embeddings (t-SNE, or PCA when there are too many points for t-SNE)."""

from collections.abc import Sequence

import numpy as np

TSNE_MAX_POINTS = 1000  # t-SNE on 2 cores: ~10 s at 1000 points; beyond that use PCA


def plot_embeddings(embeddings: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                    path: str, title: str) -> str:
    """Writes a 2-D projection of `embeddings` coloured by class to `path` (PNG).

    Returns the method used ("t-SNE" or "PCA").
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, method = project_2d(embeddings)
    figure, axes = plt.subplots(figsize=(6, 5), dpi=100)
    for index, name in enumerate(class_names):
        mask = labels == index
        axes.scatter(points[mask, 0], points[mask, 1], s=8, alpha=0.7, label=name)
    axes.set_title(f"{title} ({method}, {len(labels)} images)")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return method


def project_2d(embeddings: np.ndarray):
    embeddings = np.asarray(embeddings, np.float64)
    if len(embeddings) <= TSNE_MAX_POINTS and len(embeddings) > 5:
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(embeddings) - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0)
        return tsne.fit_transform(embeddings), "t-SNE"
    centred = embeddings - embeddings.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T, "PCA"
