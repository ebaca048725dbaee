-- Neovim's built-in LSP client against the Lacuna server (headless; 0.7.2 and newer).
-- Env: LACUNA_PYTHON, LACUNA_REPO, LACUNA_FILE, LACUNA_ACTIONS ("|"-separated title
-- prefixes to apply in turn). Writes one JSON line to stdout:
-- {results = [{titles, applied, edit, lines}]} or {error}.
local function out(x)
  io.stdout:write(vim.json.encode(x) .. "\n")
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  local python = os.getenv("LACUNA_PYTHON")
  local repo = os.getenv("LACUNA_REPO")
  local file = os.getenv("LACUNA_FILE")
  local actions = os.getenv("LACUNA_ACTIONS")

  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].filetype = "python"

  local id = vim.lsp.start_client({
    name = "lacuna",
    cmd = { python, "-m", "lsp_server" },
    cmd_cwd = repo,
    root_dir = vim.fn.fnamemodify(file, ":h"),
    init_options = { budget = 8 },
    flags = { debounce_text_changes = 0 },
  })
  local client = vim.lsp.get_client_by_id(id)
  if not vim.wait(60000, function() return client.initialized end, 50) then
    return out({ error = "server did not initialize" })
  end
  vim.lsp.buf_attach_client(buf, id)

  -- Apply each wanted action in turn (a "|"-separated list of title prefixes); the
  -- document changes between them, so each listing carries the buffer's new version.
  local results = {}
  for wanted in string.gmatch(actions, "[^|]+") do
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(buf) },
      range = { start = { line = 1, character = 4 }, ["end"] = { line = 1, character = 4 } },
      context = { diagnostics = {} },
    }
    local resp = client.request_sync("textDocument/codeAction", params, 20000, buf)
    if not resp or resp.err then
      return out({ error = "codeAction failed: " .. vim.inspect(resp) })
    end
    local titles, chosen = {}, nil
    for _, action in ipairs(resp.result or {}) do
      table.insert(titles, action.title)
      if not chosen and action.title:sub(1, #wanted) == wanted then chosen = action end
    end
    if not chosen then return out({ titles = titles, error = "no action " .. wanted }) end

    local resolved = client.request_sync("codeAction/resolve", chosen, 60000, buf)
    if not resolved or resolved.err or not resolved.result.edit then
      return out({ titles = titles, error = "resolve failed: " .. vim.inspect(resolved) })
    end
    vim.lsp.util.apply_workspace_edit(resolved.result.edit, "utf-16")
    table.insert(results, {
      titles = titles,
      applied = chosen.title,
      edit = resolved.result.edit,
      lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false),
    })
  end
  out({ results = results })
end)
if not ok then out({ error = tostring(err) }) end
