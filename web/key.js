// The API key, where the service asks for one: kept in this browser (localStorage) and sent as
// `Authorization: Bearer <key>` with every call to /v1. A service without keys never asks.

const STORE = "toonserve.api_key";

export function keyHeaders() {
  const key = localStorage.getItem(STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export function saveKey(key) {
  localStorage.setItem(STORE, key.trim());
}
