// Leaflet with marker clustering, exposed as window.L for the pages' plain scripts (imports run in order).
import "./leaflet-global.js";
import "leaflet.markercluster";
