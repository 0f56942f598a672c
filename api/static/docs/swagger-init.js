// Starts Swagger UI on /docs. A file rather than an inline script, so the page's CSP allows scripts
// from the API's own origin only.
const container = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: container.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  // No deep links: Swagger UI puts them as links inside each operation's button, which screen readers
  // and keyboards cannot reach (axe-core's nested-interactive).
  deepLinking: false,
  // The API has well over a hundred operations: open on the list of tags (each expands on a click);
  // rendering every operation at once stalls Swagger UI in the browser.
  docExpansion: "none",
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
