// A ZIP archive of files stored as they are: the results are PNG, JPEG or WebP, compressed already.

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function dosTime(date) {
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
  const day = ((date.getFullYear() - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  return [time, day];
}

function header(fields) {
  const buffer = new ArrayBuffer(fields.reduce((size, [bytes]) => size + bytes, 0));
  const view = new DataView(buffer);
  let at = 0;
  for (const [bytes, value] of fields) {
    if (bytes === 2) view.setUint16(at, value, true);
    else view.setUint32(at, value, true);
    at += bytes;
  }
  return new Uint8Array(buffer);
}

/** files: [{name, blob}] -> a Blob of type application/zip. Names are UTF-8 (flag bit 11). */
export async function zip(files) {
  const parts = [];
  const directory = [];
  let offset = 0;
  const [time, day] = dosTime(new Date());
  for (const { name, blob } of files) {
    const data = new Uint8Array(await blob.arrayBuffer());
    const path = new TextEncoder().encode(name);
    const crc = crc32(data);
    const common = [[2, 20], [2, 0x0800], [2, 0], [2, time], [2, day], [4, crc], [4, data.length], [4, data.length], [2, path.length]];
    const local = header([[4, 0x04034b50], ...common, [2, 0]]);
    parts.push(local, path, data);
    directory.push(header([[4, 0x02014b50], [2, 20], ...common, [2, 0], [2, 0], [2, 0], [2, 0], [4, 0], [4, offset]]), path);
    offset += local.length + path.length + data.length;
  }
  const size = directory.reduce((total, part) => total + part.length, 0);
  const end = header([[4, 0x06054b50], [2, 0], [2, 0], [2, files.length], [2, files.length], [4, size], [4, offset], [2, 0]]);
  return new Blob([...parts, ...directory, end], { type: "application/zip" });
}
