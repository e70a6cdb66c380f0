"""The report's page: HTML parts, tables and PNG figures (files beside the page and data URIs
inside it), and the formatting every section shares."""

import base64
import html
import io
import os

from components.lib import storage


class Page:
    """Accumulates HTML; figures become PNG files beside the page and data URIs inside it."""

    def __init__(self, title: str, out_dir: str):
        import matplotlib

        matplotlib.use("Agg")
        self.title = title
        self.out_dir = out_dir
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def banner(self, text: str) -> None:
        self.parts.append(f'<p class="synthetic">{html.escape(text)}</p>')

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def subheading(self, text: str) -> None:
        self.parts.append(f"<h3>{html.escape(text)}</h3>")

    def paragraph(self, text: str, escape: bool = True) -> None:
        self.parts.append(f"<p>{html.escape(text) if escape else text}</p>")

    def missing(self, text: str) -> None:
        self.parts.append(f'<p class="missing">{html.escape(text)}</p>')

    def table(self, header, rows, escape: bool = True) -> None:
        def cell(value):
            return html.escape(str(value)) if escape else str(value)

        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                       for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, figure, filename: str, caption: str) -> None:
        import matplotlib.pyplot as plt

        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        plt.close(figure)
        storage.write_bytes(os.path.join(self.out_dir, filename), buffer.getvalue())
        self.image(buffer.getvalue(), caption)

    def image(self, png: bytes, caption: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def render(self) -> str:
        return _TEMPLATE.format(title=html.escape(self.title), body="\n".join(self.parts))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }}
.synthetic {{ background: #fff3cd; border: 2px solid #d39e00; padding: 0.8em; font-weight: bold; }}
.missing {{ color: #777; font-style: italic; }}
.pass {{ color: #176e2d; font-weight: bold; }} .fail {{ color: #b00020; font-weight: bold; }}
img {{ max-width: 100%; }} figure {{ margin: 0.5em 0; }}
</style></head>
<body>
{body}
</body></html>
"""


def verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)

