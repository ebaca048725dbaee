-- Drives the README's Neovim snippet (sourced before this file as the init) headless: the
-- FileType autocmd starts the client, then the code action at the marker is applied as
-- vim.lsp.buf.code_action would apply it. Env: LACUNA_FILE, LACUNA_LINE, LACUNA_COL.
-- Writes one JSON line to stdout: {titles, applied, lines} or {error}.
local function out(x)
  io.stdout:write(vim.json.encode(x) .. "\n")
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("LACUNA_FILE")))
  local buf = vim.api.nvim_get_current_buf()
  if not vim.wait(5000, function() return _G.lacuna_client ~= nil end, 50) then
    return out({ error = "the README's autocmd did not start a client" })
  end
  local client = vim.lsp.get_client_by_id(_G.lacuna_client)
  if not vim.wait(60000, function() return client.initialized end, 50) then
    return out({ error = "server did not initialize" })
  end
  local line, col = tonumber(os.getenv("LACUNA_LINE")), tonumber(os.getenv("LACUNA_COL"))
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = { line = line, character = col }, ["end"] = { line = line, character = col } },
    context = { diagnostics = {} },
  }
  local resp = client.request_sync("textDocument/codeAction", params, 20000, buf)
  if not resp or resp.err then return out({ error = "codeAction: " .. vim.inspect(resp) }) end
  local titles, chosen = {}, nil
  for _, action in ipairs(resp.result or {}) do
    table.insert(titles, action.title)
    if not chosen and action.title:sub(1, 4) == "Fill" then chosen = action end
  end
  if not chosen then return out({ titles = titles, error = "no Fill action" }) end
  local resolved = client.request_sync("codeAction/resolve", chosen, 170000, buf)
  if not resolved or resolved.err or not resolved.result.edit then
    return out({ titles = titles, error = "resolve: " .. vim.inspect(resolved) })
  end
  vim.lsp.util.apply_workspace_edit(resolved.result.edit, "utf-16")
  out({ titles = titles, applied = chosen.title,
        lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false) })
end)
if not ok then out({ error = tostring(err) }) end
