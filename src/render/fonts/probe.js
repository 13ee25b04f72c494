// Draws one sample of each script in Grafana's font stack on a canvas and
// answers which ones came out as real glyphs. A character no installed
// font has is drawn as the same "tofu" box as a private-use code point,
// or not at all; emoji must also come out in colour. No network: the
// canvas is made in the blank page the tab is on.
(() => {
  const SAMPLES = __SAMPLES__;
  const FONT = '32px Inter, Helvetica, Arial, sans-serif';
  const canvas = document.createElement('canvas');
  canvas.width = 48;
  canvas.height = 48;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const draw = (ch) => {
    g.clearRect(0, 0, 48, 48);
    g.font = FONT;
    g.fillStyle = '#000';
    g.textBaseline = 'top';
    g.fillText(ch, 4, 4);
    return g.getImageData(0, 0, 48, 48).data;
  };
  const same = (a, b) => a.every((v, i) => v === b[i]);
  const tofu = draw('\u{10FFFD}');
  const blank = draw(' ');
  const drawn = (ch) => {
    const d = draw(ch);
    return !same(d, tofu) && !same(d, blank);
  };
  const coloured = (ch) => {
    const d = draw(ch);
    for (let i = 0; i < d.length; i += 4) {
      const [r, gr, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      if (a > 128 && (Math.abs(r - gr) > 48 || Math.abs(gr - b) > 48)) return true;
    }
    return false;
  };
  const result = {};
  for (const [name, text, colour] of SAMPLES) {
    const chars = [...text];
    result[name] = chars.every(drawn) && (!colour || chars.every(coloured));
  }
  return JSON.stringify(result);
})()
