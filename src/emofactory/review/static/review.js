// Keys 1-7 pick a class, 0 skips: each answer button names its key in data-key.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.tagName === "INPUT") return;
  if (!/^[0-9]$/.test(event.key)) return;
  const button = document.querySelector(`#answers button[data-key="${event.key}"]`);
  if (button) {
    event.preventDefault();
    button.click();
  }
});
