// "Copy" buttons: data-copy names the field whose value goes to the clipboard.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    const said = document.getElementById("copied");
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      if (said) said.textContent = "Copied";
    } catch {
      if (said) said.textContent = "Press Ctrl+C (or ⌘C) to copy the selected key";
    }
  });
}
