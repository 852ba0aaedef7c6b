// leaflet.markercluster extends the global `L`; bundled, Leaflet sets no global, so this module does first.
import L from "leaflet";
window.L = L;
